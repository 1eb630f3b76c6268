package nats_test

import (
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/internal/testpeers"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fast reconnects quickly, so that the kill and restart cases stay short.
var fast = &nats.Options{ReconnectWait: 50 * time.Millisecond}

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) brokertest.Factory {
		srv := testpeers.StartNATS(t)
		return brokertest.Factory{
			New:     func(t *testing.T) broker.Broker { return nats.New(srv.URL(), fast) },
			Kill:    func(t *testing.T) { srv.Shutdown() },
			Restart: func(t *testing.T) { srv.Restart() },
		}
	})
}
