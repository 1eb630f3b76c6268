package redis_test

import (
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/internal/testpeers"
)

// newBroker returns a Broker on addrs with the tests' timeouts, failing the test on error.
func newBroker(t testing.TB, opts redis.Options) *redis.Broker {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if opts.ReconnectDelay == 0 {
		opts.ReconnectDelay = 50 * time.Millisecond
	}
	b, err := redis.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// singleFactory runs the suite against one redis-server of its own per case.
func singleFactory(aof bool) func(t *testing.T) brokertest.Factory {
	return func(t *testing.T) brokertest.Factory {
		srv := testpeers.StartRedis(t, &testpeers.RedisOptions{AOF: aof})
		return brokertest.Factory{
			New: func(t *testing.T) broker.Broker {
				return newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
			},
			Kill:    func(t *testing.T) { srv.Kill() },
			Restart: func(t *testing.T) { srv.Restart() },
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, singleFactory(false))
}

func TestConformanceAOF(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, singleFactory(true))
}
