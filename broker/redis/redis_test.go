package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/internal/testpeers"
)

// startNode starts b as node name with a Recorder, and closes it when the test ends.
func startNode(t *testing.T, b *redis.Broker, name string) *brokertest.Recorder {
	t.Helper()
	rec := brokertest.NewRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx, name, rec); err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return rec
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publishH publishes with history, failing the test on error.
func publishH(t *testing.T, b *redis.Broker, topic, payload string) broker.Position {
	t.Helper()
	pos, err := b.Publish(ctx10(t), topic, []byte(payload), broker.PublishOptions{History: &broker.HistoryPolicy{Size: 100}})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return pos
}

// publishUntilUp publishes with history until the broker takes it (the link comes back a
// moment after the server), and returns its position.
func publishUntilUp(t *testing.T, b *redis.Broker, topic, payload string) broker.Position {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pos, err := b.Publish(ctx10(t), topic, []byte(payload), broker.PublishOptions{History: &broker.HistoryPolicy{Size: 100}})
		if err == nil {
			return pos
		}
		if !errors.Is(err, broker.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Publish after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHistoryRestart checks what a Redis restart does to a topic's history: without
// persistence the history is gone, so the next publication starts a new epoch and a reader at
// an old position is told to reset; with AOF the epoch, the offsets and the messages survive.
func TestHistoryRestart(t *testing.T) {
	t.Parallel()
	for _, aof := range []bool{false, true} {
		t.Run(fmt.Sprintf("aof=%v", aof), func(t *testing.T) {
			srv := testpeers.StartRedis(t, &testpeers.RedisOptions{AOF: aof})
			b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
			startNode(t, b, brokertest.Unique("node-"))
			topic := brokertest.Unique("restart/")
			p1 := publishH(t, b, topic, "one")
			p2 := publishH(t, b, topic, "two")
			srv.Kill()
			srv.Restart()
			p3 := publishUntilUp(t, b, topic, "three")
			recs, latest, err := b.History(ctx10(t), topic, p1, 0)
			if !aof {
				if p3.Epoch == p1.Epoch || p3.Offset != 1 {
					t.Errorf("after a restart without persistence, published at %+v (before: %+v), want a new epoch from offset 1", p3, p1)
				}
				if !errors.Is(err, broker.ErrEpochChanged) {
					t.Errorf("History after %+v: %v, want ErrEpochChanged", p1, err)
				}
				if latest != p3 {
					t.Errorf("latest %+v, want %+v", latest, p3)
				}
				return
			}
			if p3.Epoch != p1.Epoch || p3.Offset != p2.Offset+1 {
				t.Errorf("after a restart with AOF, published at %+v, want %+v's epoch at offset %d", p3, p2, p2.Offset+1)
			}
			if err != nil {
				t.Fatalf("History after %+v: %v", p1, err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, string(r.Payload))
			}
			if !slices.Equal(got, []string{"two", "three"}) || recs[0].Pos != p2 || recs[1].Pos != p3 {
				t.Errorf("History after %+v: %v, want two at %+v and three at %+v", p1, recs, p2, p3)
			}
		})
	}
}

// TestHistoryTTL checks that a history not published to for its TTL is gone: a reader is told
// to reset, and the next publication starts a new epoch.
func TestHistoryTTL(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	startNode(t, b, brokertest.Unique("node-"))
	topic := brokertest.Unique("ttl/")
	policy := &broker.HistoryPolicy{Size: 10, TTL: 100 * time.Millisecond}
	p1, err := b.Publish(ctx10(t), topic, []byte("x"), broker.PublishOptions{History: policy})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := b.History(ctx10(t), topic, p1, 0)
		if errors.Is(err, broker.ErrEpochChanged) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("History %v after the TTL: %v, want ErrEpochChanged", time.Since(deadline.Add(-10*time.Second)), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p2, err := b.Publish(ctx10(t), topic, []byte("y"), broker.PublishOptions{History: policy})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Epoch == p1.Epoch || p2.Offset != 1 {
		t.Errorf("published at %+v after the history expired (before: %+v), want a new epoch from 1", p2, p1)
	}
}

// TestLeaseDeadNode checks that the leases of a node that died (closed without releasing or
// renewing them) free themselves after their ttl, and that Renew does not revive them.
func TestLeaseDeadNode(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	a := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	startNode(t, a, brokertest.Unique("a-"))
	startNode(t, b, brokertest.Unique("b-"))
	set := brokertest.Unique("user-")
	const ttl = 300 * time.Millisecond
	for _, h := range []string{"a1", "a2"} {
		if ok, err := a.Acquire(ctx10(t), set, h, 2, ttl); !ok || err != nil {
			t.Fatalf("Acquire(%s) = %v, %v", h, ok, err)
		}
	}
	a.Close() // dies holding two leases
	if ok, err := b.Acquire(ctx10(t), set, "b1", 2, time.Minute); ok || err != nil {
		t.Fatalf("Acquire while the dead node's leases hold = %v, %v; want false", ok, err)
	}
	start := time.Now()
	for {
		ok, err := b.Acquire(ctx10(t), set, "b1", 2, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the dead node's leases of %v still held after 10 s", ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The expired a1 is not revived by a late Renew: b2 takes the second place.
	if err := b.Renew(ctx10(t), set, []string{"a1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Acquire(ctx10(t), set, "b2", 2, time.Minute); !ok || err != nil {
		t.Fatalf("Acquire(b2) = %v, %v; want true", ok, err)
	}
	if ok, err := b.Acquire(ctx10(t), set, "b3", 2, time.Minute); ok || err != nil {
		t.Fatalf("Acquire(b3) on a full set = %v, %v; want false", ok, err)
	}
}

// blockingHandler blocks in HandleMessage until released (which a Handler must not do), to
// show that the broker's reader keeps going and drops instead.
type blockingHandler struct {
	*brokertest.Recorder
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) HandleMessage(topic string, payload []byte, pos broker.Position) {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
	})
	h.Recorder.HandleMessage(topic, payload, pos)
}

// TestQueueFull checks that a Handler that falls behind makes the broker drop (bounded
// memory), count the drops and report a discontinuity on the topic, while the link stays up.
func TestQueueFull(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}, QueueSize: 8})
	h := &blockingHandler{Recorder: brokertest.NewRecorder(t), entered: make(chan struct{}), release: make(chan struct{})}
	if err := b.Start(ctx10(t), brokertest.Unique("node-"), h); err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			close(h.release)
		}
		b.Close()
	}()
	topic := brokertest.Unique("full/")
	if err := b.Subscribe(ctx10(t), topic); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if _, err := b.Publish(ctx10(t), topic, fmt.Appendf(nil, "%d", i), broker.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	<-h.entered
	deadline := time.Now().Add(10 * time.Second)
	for b.Dropped() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(h.release)
	released = true
	if b.Dropped() == 0 {
		t.Fatalf("a queue of 8 behind a stuck Handler dropped nothing of %d messages", n)
	}
	evs := h.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if !slices.Equal(evs[0].Topics, []string{topic}) || evs[0].Err == nil {
		t.Errorf("discontinuity %+v, want on %q with an error", evs[0], topic)
	}
	// What was queued is heard; the rest was dropped. Drops go on after the first (the
	// reader may still be reading the publications): wait until every message is accounted
	// for, then a moment more for one counted twice.
	heard := func() uint64 { return uint64(len(h.Filter(brokertest.OnTopic(topic)))) }
	for deadline := time.Now().Add(10 * time.Second); heard()+b.Dropped() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("heard %d and dropped %d of %d after 10 s", heard(), b.Dropped(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if heard()+b.Dropped() != n {
		t.Errorf("heard %d and dropped %d of %d", heard(), b.Dropped(), n)
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err after drops: %v, want nil (the link is up)", err)
	}
}

// TestStartDown checks that Start fails fast, with ErrUnavailable, when Redis is not there.
func TestStartDown(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	srv.Kill()
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	defer b.Close()
	start := time.Now()
	err := b.Start(ctx10(t), "n", brokertest.NewRecorder(t))
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Start with Redis down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Start took %v to fail", d)
	}
}

// TestUnresponsive stops Redis without closing its connections (SIGSTOP, as a network that
// black-holes traffic): the link is declared lost within a few Timeouts, publications fail
// fast meanwhile, and once Redis answers again the subscriptions are back and a discontinuity
// was reported.
func TestUnresponsive(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	opts := redis.Options{Addrs: []string{srv.Addr()}, Timeout: 300 * time.Millisecond}
	a, b := newBroker(t, opts), newBroker(t, opts)
	startNode(t, a, brokertest.Unique("a-"))
	recB := startNode(t, b, brokertest.Unique("b-"))
	topic := brokertest.Unique("stopped/")
	if err := b.Subscribe(ctx10(t), topic); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	start := time.Now()
	for a.Err() == nil || b.Err() == nil {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the link of a stopped Redis is still up after 10 s: %v, %v", a.Err(), b.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	detected := time.Since(start)
	t0 := time.Now()
	if _, err := a.Publish(ctx10(t), topic, []byte("lost"), broker.PublishOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish to a stopped Redis: %v, want ErrUnavailable", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Publish to a stopped Redis took %v", d)
	}
	srv.Resume()
	resumed = true
	recB.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	for {
		if _, err := a.Publish(ctx10(t), topic, []byte("back"), broker.PublishOptions{}); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Fatal(err)
		}
		if len(recB.Filter(brokertest.OnTopic(topic))) > 0 {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("b heard nothing after Redis resumed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("lost link detected after %v", detected.Round(time.Millisecond))
}

// TestDiscontinuityFirst publishes without pause while Redis is killed and restarted: a node
// hears of the discontinuity before any message published after the kill (which went to the
// restarted server, so was heard on the new connection).
func TestDiscontinuityFirst(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	a := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	startNode(t, a, brokertest.Unique("a-"))
	recB := startNode(t, b, brokertest.Unique("b-"))
	topic := brokertest.Unique("first/")
	if err := b.Subscribe(ctx10(t), topic); err != nil {
		t.Fatal(err)
	}
	var phase atomic.Int32
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := fmt.Sprintf("%d:%d", phase.Load(), i)
			if _, err := a.Publish(context.Background(), topic, []byte(msg), broker.PublishOptions{}); err != nil {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	srv.Kill()
	phase.Store(1)
	srv.Restart()
	recB.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "message" && strings.HasPrefix(ev.Payload, "1:") })
	close(stop)
	<-done
	disc := false
	for _, ev := range recB.Events() {
		switch {
		case ev.Kind == "discontinuity":
			disc = true
		case ev.Kind == "message" && strings.HasPrefix(ev.Payload, "1:") && !disc:
			t.Fatalf("b heard %q, published after the kill, before the discontinuity", ev.Payload)
		}
	}
}

// TestClientKilled has Redis close the subscribed connections (CLIENT KILL TYPE pubsub, as it
// does to a subscriber past its client-output-buffer-limit): a discontinuity is reported and
// the subscriptions come back.
func TestClientKilled(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	rec := startNode(t, b, brokertest.Unique("node-"))
	topic := brokertest.Unique("killed/")
	if err := b.Subscribe(ctx10(t), topic); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != "1" {
		t.Fatalf("CLIENT KILL TYPE pubsub: %q, %v; want 1 connection killed", n, err)
	}
	evs := rec.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if evs[0].Topics != nil || !errors.Is(evs[0].Err, broker.ErrUnavailable) {
		t.Errorf("discontinuity %+v, want every topic and ErrUnavailable", evs[0])
	}
	if b.Losses() != 1 {
		t.Errorf("Losses() = %d, want 1", b.Losses())
	}
	if _, err := b.Publish(ctx10(t), topic, []byte("back"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(1, brokertest.OnTopic(topic))
}

// TestPublishAfterRestart checks that once Err is nil after a Redis restart, publications
// succeed at once: the pipelined connections that broke while idle were replaced when the
// link came back, not found broken by the next publications (two of ten failed before).
func TestPublishAfterRestart(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartRedis(t, nil)
	b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
	startNode(t, b, brokertest.Unique("node-"))
	history := broker.PublishOptions{History: &broker.HistoryPolicy{Size: 3}}
	for round := range 3 {
		for range 20 {
			if _, err := b.Publish(ctx10(t), "x", []byte("x"), history); err != nil {
				t.Fatal(err)
			}
		}
		srv.Kill()
		srv.Restart()
		deadline := time.Now().Add(10 * time.Second)
		for b.Err() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("link down 10 s after the restart: %v", b.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
		for i := range 10 {
			if _, err := b.Publish(ctx10(t), "x", []byte("x"), history); err != nil {
				t.Fatalf("round %d: publication %d with history after the link came back: %v", round, i, err)
			}
			if _, err := b.Publish(ctx10(t), "x", []byte("x"), broker.PublishOptions{}); err != nil {
				t.Fatalf("round %d: publication %d after the link came back: %v", round, i, err)
			}
		}
	}
}
