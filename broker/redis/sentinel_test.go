package redis_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/internal/testpeers"
)

// sentinelSetup is a master, one replica and one Sentinel watching them.
type sentinelSetup struct {
	master, replica *testpeers.Redis
	sentinel        *testpeers.Sentinel
	name            string
}

func startSentinelSetup(t *testing.T) *sentinelSetup {
	t.Helper()
	s := &sentinelSetup{name: "herald-master"}
	// No 5 s wait for more replicas before a diskless sync (the default).
	s.master = testpeers.StartRedis(t, &testpeers.RedisOptions{Args: []string{"--repl-diskless-sync-delay", "0"}})
	s.replica = testpeers.StartRedis(t, &testpeers.RedisOptions{ReplicaOf: s.master.Addr()})
	// The replica has synchronised before the Sentinel looks, so that it is known at once
	// and can be promoted.
	waitReply(t, s.replica, "INFO replication", "master_link_status:up", "INFO", "replication")
	s.sentinel = testpeers.StartSentinel(t, s.name, s.master)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := testpeers.RedisCommand(s.sentinel.Addr(), "SENTINEL", "REPLICAS", s.name)
		if err == nil && out == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel does not know the replica: %q %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// waitReply waits until the reply of cmd on r contains want.
func waitReply(t *testing.T, r *testpeers.Redis, what, want string, cmd ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := r.Do(cmd...)
		if err == nil && strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %q %v", what, out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sentinelSetup) options() redis.Options {
	return redis.Options{SentinelMaster: s.name, SentinelAddrs: []string{s.sentinel.Addr()}}
}

// TestSentinel runs the suite through a Sentinel (without the kill and restart cases, which
// TestSentinelFailover replaces).
func TestSentinel(t *testing.T) {
	t.Parallel()
	s := startSentinelSetup(t)
	brokertest.Run(t, func(t *testing.T) brokertest.Factory {
		return brokertest.Factory{New: func(t *testing.T) broker.Broker { return newBroker(t, s.options()) }}
	})
}

// TestSentinelFailover kills the master: the Sentinel promotes the replica, and the brokers
// follow it, report a discontinuity, and carry publications again.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := startSentinelSetup(t)
	a := newBroker(t, s.options())
	b := newBroker(t, s.options())
	recA := startNode(t, a, brokertest.Unique("a-"))
	recB := startNode(t, b, brokertest.Unique("b-"))
	topic := brokertest.Unique("failover/")
	for _, x := range []*redis.Broker{a, b} {
		if err := x.Subscribe(ctx10(t), topic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Publish(ctx10(t), topic, []byte("before"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	recB.WaitFor(1, brokertest.OnTopic(topic))
	stream := brokertest.Unique("failover-history/")
	before := publishH(t, a, stream, "kept by the replica, or not")
	waitReply(t, s.replica, "the replica to have the history", "1", "EXISTS", "herald:s:"+stream)
	start := time.Now()
	s.master.Kill()
	deadline := start.Add(20 * time.Second)
	for {
		addr, err := s.sentinel.Master(s.name)
		if err == nil && addr == s.replica.Addr() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failover to %s after 20 s: %q %v", s.replica.Addr(), addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	promoted := time.Since(start)
	for _, rec := range []*brokertest.Recorder{recA, recB} {
		rec.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	}
	for {
		_, err := a.Publish(ctx10(t), topic, []byte("after"), broker.PublishOptions{})
		if err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("Publish after the failover: %v", err)
		}
		if len(recB.Filter(func(ev brokertest.Event) bool { return ev.Payload == "after" })) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b heard nothing within 20 s of the master's death (promoted after %v)", promoted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkEpochAfterFailover(t, a, stream, before)
	t.Logf("replica promoted %v after the master was killed; publications heard again after %v", promoted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if err := a.Err(); err != nil {
		t.Errorf("a.Err() after the failover: %v", err)
	}
}

// TestSentinelSwitchover asks the Sentinel for a failover while the master is alive (SENTINEL
// FAILOVER): nothing closes the connections to the old master, which the Sentinel demotes only
// some ten seconds later, yet the brokers move their subscriptions to the new master within
// about a second, and report a discontinuity.
func TestSentinelSwitchover(t *testing.T) {
	t.Parallel()
	s := startSentinelSetup(t)
	a := newBroker(t, s.options())
	b := newBroker(t, s.options())
	startNode(t, a, brokertest.Unique("a-"))
	recB := startNode(t, b, brokertest.Unique("b-"))
	topic := brokertest.Unique("switch/")
	if err := b.Subscribe(ctx10(t), topic); err != nil {
		t.Fatal(err)
	}
	stream := brokertest.Unique("switch-history/")
	before := publishH(t, a, stream, "kept by the replica, or not")
	waitReply(t, s.replica, "the replica to have the history", "1", "EXISTS", "herald:s:"+stream)
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	// The Sentinel refuses (NOGOODSLAVE) until it has had the replica's INFO.
	for {
		_, err := testpeers.RedisCommand(s.sentinel.Addr(), "SENTINEL", "FAILOVER", s.name)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		addr, err := s.sentinel.Master(s.name)
		if err == nil && addr == s.replica.Addr() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no switchover to %s after 20 s: %q %v", s.replica.Addr(), addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	promoted := time.Since(start)
	recB.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	for {
		_, err := a.Publish(ctx10(t), topic, []byte("after"), broker.PublishOptions{})
		if err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Logf("Publish after the switchover: %v", err)
		}
		if len(recB.Filter(brokertest.OnTopic(topic))) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b heard nothing within 20 s of the switchover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkEpochAfterFailover(t, a, stream, before)
	t.Logf("promoted after %v; heard on the new master after %v", promoted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if role, err := s.replica.Do("ROLE"); err != nil || role != "3" { // a master's ROLE is an array of three
		t.Fatalf("the new master's ROLE: %q %v", role, err)
	}
	clients, err := s.replica.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	subscribed := 0
	for _, line := range strings.Split(clients, "\n") {
		if strings.Contains(line, "name=herald-") && !strings.Contains(line, " sub=0 ") {
			subscribed++
		}
	}
	if subscribed != 2 {
		t.Errorf("%d subscribed connections of the brokers on the new master, want 2:\n%s", subscribed, clients)
	}
}

// checkEpochAfterFailover checks that the first publication on the promoted replica starts a
// new epoch of a history written on the old master (whose last writes it may not have had),
// and that a reader at the old position is told so.
func checkEpochAfterFailover(t *testing.T, b *redis.Broker, topic string, before broker.Position) {
	t.Helper()
	after := publishUntilUp(t, b, topic, "on the new master")
	if after.Epoch == before.Epoch || after.Offset != 1 {
		t.Errorf("published at %+v after the failover (before: %+v), want a new epoch from 1", after, before)
	}
	if _, _, err := b.History(ctx10(t), topic, before, 0); !errors.Is(err, broker.ErrEpochChanged) {
		t.Errorf("History after %+v, from before the failover: %v, want ErrEpochChanged", before, err)
	}
}
