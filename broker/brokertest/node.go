package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
)

// spy is a Broker whose Handler counts, per topic, the messages the broker delivers, whatever
// the node above it does with them; it also notes the topics it unsubscribed.
type spy struct {
	broker.Broker
	mu    sync.Mutex
	heard map[string]int
	left  map[string]bool // Unsubscribe returned without error
}

func (s *spy) Unsubscribe(ctx context.Context, topics ...string) error {
	err := s.Broker.Unsubscribe(ctx, topics...)
	if err == nil {
		s.mu.Lock()
		for _, topic := range topics {
			s.left[topic] = true
		}
		s.mu.Unlock()
	}
	return err
}

func (s *spy) unsubscribed(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.left[topic]
}

type spyHandler struct {
	broker.Handler
	s *spy
}

func (s *spy) Start(ctx context.Context, node string, h broker.Handler) error {
	return s.Broker.Start(ctx, node, spyHandler{h, s})
}

func (h spyHandler) HandleMessage(topic string, payload []byte, pos broker.Position) {
	h.s.mu.Lock()
	h.s.heard[topic]++
	h.s.mu.Unlock()
	h.Handler.HandleMessage(topic, payload, pos)
}

func (s *spy) count(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heard[topic]
}

// startNodes makes and starts n broker.Nodes, closed when the case ends, and waits until each
// knows all.
func startNodes(t *testing.T, f Factory, n int) ([]*broker.Node, []*spy) {
	t.Helper()
	nodes := make([]*broker.Node, n)
	spies := make([]*spy, n)
	for i := range nodes {
		spies[i] = &spy{Broker: f.New(t), heard: make(map[string]int), left: make(map[string]bool)}
		nodes[i] = broker.NewNode(spies[i], &broker.NodeOptions{
			Name: Unique(fmt.Sprintf("node%d-", i)), Linger: -1,
			HeartbeatInterval: 100 * time.Millisecond, NodeExpiry: 2 * time.Second,
		})
		if err := nodes[i].Start(ctxT(t)); err != nil {
			t.Fatalf("Node.Start: %v", err)
		}
		t.Cleanup(func() { _ = nodes[i].Close() })
	}
	deadline := time.Now().Add(wait)
	for _, nd := range nodes {
		for len(nd.Nodes()) != n {
			if time.Now().After(deadline) {
				t.Fatalf("node %s knows %q after %v, want %d nodes", nd.Name(), nd.Nodes(), wait, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes, spies
}

// testNodeRefCount checks broker.Node's reference counting over the broker: the topic stays
// subscribed while one handler remains, and the broker stops delivering once the last left.
func testNodeRefCount(t *testing.T, f Factory) {
	nodes, spies := startNodes(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic, witness := Unique("ref/"), Unique("witness/")
	var n1, n2 atomic.Int32
	leave1, err := b.Join(ctxT(t), topic, func([]byte, broker.Position) { n1.Add(1) })
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	leave2, err := b.Join(ctxT(t), topic, func([]byte, broker.Position) { n2.Add(1) })
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	var w atomic.Int32
	leaveW, err := b.Join(ctxT(t), witness, func([]byte, broker.Position) { w.Add(1) })
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	defer leaveW()
	waitCount := func(what string, c *atomic.Int32, n int32) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for c.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s heard %d of %d messages", what, c.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	pub := func(tp string) {
		t.Helper()
		if _, err := a.Publish(ctxT(t), tp, []byte("x"), broker.PublishOptions{}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	pub(topic)
	waitCount("handler 1", &n1, 1)
	waitCount("handler 2", &n2, 1)
	leave1()
	pub(topic)
	waitCount("handler 2", &n2, 2)
	if n1.Load() != 1 {
		t.Errorf("handler 1 heard %d messages, after it left", n1.Load())
	}
	if got := spies[1].count(topic); got != 2 {
		t.Errorf("the broker delivered %d messages on the topic, want 2", got)
	}
	leave2()
	if slices.Contains(b.Topics(), topic) {
		t.Errorf("Topics() = %q after the last leave", b.Topics())
	}
	// Topics() drops the topic at once; the node unsubscribes after its Linger (none here),
	// and the broker returns once the engine confirmed.
	deadline := time.Now().Add(wait)
	for !spies[1].unsubscribed(topic) {
		if time.Now().After(deadline) {
			t.Fatalf("the node did not unsubscribe from the topic within %v of the last leave", wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pub(topic)
	pub(witness)
	waitCount("the witness", &w, 1)
	time.Sleep(settle)
	if got := spies[1].count(topic); got != 2 {
		t.Errorf("the broker delivered %d messages on the topic, want 2: the last leave did not unsubscribe", got)
	}
}

// testNodeRequests checks broker.Node's requests and surveys over the broker's Send.
func testNodeRequests(t *testing.T, f Factory) {
	nodes, _ := startNodes(t, f, 3)
	for _, nd := range nodes {
		nd.Handle("whoami", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
			return fmt.Appendf(nil, "%s asked %s: %s", from, nd.Name(), payload), nil
		})
	}
	a, b := nodes[0], nodes[1]
	got, err := a.Request(ctxT(t), b.Name(), "whoami", []byte("hi"))
	if want := fmt.Sprintf("%s asked %s: hi", a.Name(), b.Name()); err != nil || string(got) != want {
		t.Errorf("Request = %q, %v; want %q", got, err, want)
	}
	if _, err := a.Request(ctxT(t), b.Name(), "nothing", nil); !errors.As(err, new(*broker.RemoteError)) {
		t.Errorf("Request of a kind without handler: %v, want a RemoteError", err)
	}
	if _, err := a.Request(ctxT(t), Unique("nobody-"), "whoami", nil); !errors.Is(err, broker.ErrUnknownNode) {
		t.Errorf("Request to an unknown node: %v, want ErrUnknownNode", err)
	}
	replies, missing, err := a.Survey(ctxT(t), "whoami", []byte("all"))
	if err != nil || len(missing) != 0 || len(replies) != 3 {
		t.Fatalf("Survey = %q, missing %q, %v", replies, missing, err)
	}
	for _, nd := range nodes {
		if want := fmt.Sprintf("%s asked %s: all", a.Name(), nd.Name()); string(replies[nd.Name()]) != want {
			t.Errorf("%s answered %q, want %q", nd.Name(), replies[nd.Name()], want)
		}
	}
	// A node that closes is gone from the others' registries at once.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for slices.Contains(a.Nodes(), b.Name()) {
		if time.Now().After(deadline) {
			t.Fatalf("a still lists %s %v after it closed", b.Name(), wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
