package redis_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

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
			// Each broker sets up 16 subscribed connections at Start, each within Timeout:
			// the tests' 1 s ran out once with the other packages' tests on 2 cores.
			return newBroker(t, redis.Options{Addrs: []string{nodes[0].Addr(), nodes[1].Addr()}, Cluster: true, Timeout: 3 * time.Second})
		}}
	})
}

// TestClusterNodeRestart kills one of the three masters and restarts it (it rejoins with its
// nodes.conf): the partitions it served report a discontinuity on their topics only, and
// every topic is heard again.
func TestClusterNodeRestart(t *testing.T) {
	t.Parallel()
	nodes := testpeers.StartRedisCluster(t, 3)
	opts := redis.Options{Addrs: []string{nodes[0].Addr()}, Cluster: true}
	a, b := newBroker(t, opts), newBroker(t, opts)
	startNode(t, a, brokertest.Unique("a-"))
	recB := startNode(t, b, brokertest.Unique("b-"))
	var topics []string
	for i := range 64 {
		topics = append(topics, brokertest.Unique(fmt.Sprintf("c%d/", i)))
	}
	if err := b.Subscribe(ctx10(t), topics...); err != nil {
		t.Fatal(err)
	}
	nodes[1].Kill()
	deadline := time.Now().Add(20 * time.Second)
	for b.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("b's link is up 20 s after a master was killed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	nodes[1].Restart()
	evs := recB.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if len(evs[0].Topics) == 0 || len(evs[0].Topics) == len(topics) {
		t.Errorf("discontinuity on %d topics of %d, want those of the killed master's partitions", len(evs[0].Topics), len(topics))
	}
	for _, topic := range topics {
		for {
			_, err := a.Publish(ctx10(t), topic, []byte("back"), broker.PublishOptions{})
			if err != nil && !errors.Is(err, broker.ErrUnavailable) {
				t.Fatalf("Publish after the restart: %v", err)
			}
			if len(recB.Filter(brokertest.OnTopic(topic))) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("b does not hear %q 20 s after the restart", topic)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
