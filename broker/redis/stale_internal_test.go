package redis

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/internal/testpeers"
)

// hookClient is a rueidis client whose dedicated connections run onSubscribe, once, just
// before they send their next SUBSCRIBE.
type hookClient struct {
	rueidis.Client
	onSubscribe atomic.Pointer[func()]
}

func (c *hookClient) Dedicate() (rueidis.DedicatedClient, func()) {
	conn, release := c.Client.Dedicate()
	return &hookConn{DedicatedClient: conn, c: c}, release
}

type hookConn struct {
	rueidis.DedicatedClient
	c *hookClient
}

func (h *hookConn) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if words := cmd.Commands(); len(words) > 0 && words[0] == "SUBSCRIBE" {
		if fn := h.c.onSubscribe.Swap(nil); fn != nil {
			(*fn)()
		}
	}
	return h.DedicatedClient.Do(ctx, cmd)
}

// TestUnsubscribedWhileReconnecting: a topic unsubscribed while the link is down, after the
// reconnection read the topics to subscribe, is not left subscribed on the new connection
// (where its messages would take room in the queue until the next reconnection). The broker
// runs as Start runs it, but with a client that unsubscribes at that moment.
func TestUnsubscribedWhileReconnecting(t *testing.T) {
	srv := testpeers.StartRedis(t, nil)
	o, err := Options{Addrs: []string{srv.Addr()}, Timeout: time.Second, ReconnectDelay: 50 * time.Millisecond}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	client, err := rueidis.NewClient(o.clientOption("n"))
	if err != nil {
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder(t)
	hc := &hookClient{Client: client}
	b := &Broker{opts: o, started: true, node: "n", h: rec, client: client, stop: make(chan struct{})}
	p := newPartition(b, 0, b.stop, hc)
	b.parts = []*partition{p}
	b.wg.Add(2)
	go p.supervise()
	go p.work()
	t.Cleanup(func() { _ = b.Close() })
	if err := <-p.first; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const topic = "leaving"
	if err := b.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var ran atomic.Bool
	unsubscribe := func() {
		ran.Store(true)
		if err := b.Unsubscribe(ctx, topic); err != nil {
			t.Errorf("Unsubscribe while the link is down: %v", err)
		}
	}
	hc.onSubscribe.Store(&unsubscribe)
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != "1" {
		t.Fatalf("CLIENT KILL TYPE pubsub: %q, %v; want 1 connection killed", n, err)
	}
	rec.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if !ran.Load() {
		t.Fatal("the reconnection sent no SUBSCRIBE")
	}
	if err := b.Err(); err != nil {
		t.Fatalf("Err after the reconnection: %v", err)
	}
	if n, err := srv.Do("PUBLISH", b.name(0, kindTopic, topic), "x"); err != nil || n != "0" {
		t.Errorf("PUBLISH on the unsubscribed topic reached %s subscribers (%v), want 0", n, err)
	}
}
