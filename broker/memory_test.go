package broker_test

import (
	"testing"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T) brokertest.Factory {
		hub := broker.NewMemoryHub()
		return brokertest.Factory{
			New:     func(t *testing.T) broker.Broker { return hub.Broker() },
			Kill:    func(t *testing.T) { hub.Kill() },
			Restart: func(t *testing.T) { hub.Restart() },
		}
	})
}
