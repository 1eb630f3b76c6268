package redis_test

import (
	"testing"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/internal/testpeers"
)

// TestCluster runs the suite against a Redis Cluster of three masters (created with
// redis-cli --cluster create), shared by every case; topics are spread over 16 hash-tag
// partitions, heard with SSUBSCRIBE.
func TestCluster(t *testing.T) {
	t.Parallel()
	nodes := testpeers.StartRedisCluster(t, 3)
	brokertest.Run(t, func(t *testing.T) brokertest.Factory {
		return brokertest.Factory{New: func(t *testing.T) broker.Broker {
			return newBroker(t, redis.Options{Addrs: []string{nodes[0].Addr(), nodes[1].Addr()}, Cluster: true})
		}}
	})
}
