package herald

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/websocket"
)

// fanTransport is an in-memory Transport for fan-out tests: Receive serves the messages put in
// in, and every message sent after the subscription is counted (prepared ones apart); when
// block is set, Send waits on it.
type fanTransport struct {
	in       chan []byte
	replies  chan []byte
	done     chan struct{}
	closeErr sync.Once

	counting atomic.Bool
	sent     *atomic.Int64 // shared by the subscribers of one test
	prepared atomic.Int64
	target   int64
	reached  chan struct{}
	block    chan struct{}
}

func (c *fanTransport) Receive(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	case <-c.done:
		return nil, errors.New("closed")
	}
}

func (c *fanTransport) Send(ctx context.Context, msg []byte) error {
	if !c.counting.Load() {
		select {
		case c.replies <- msg:
		case <-c.done:
		}
		return nil
	}
	if c.block != nil {
		// As a real transport does, a send bounded by a deadline (the socket's own goroutine
		// sets one; the pool's writers do not) fails when it passes.
		var expired <-chan time.Time
		if d, ok := ctx.Deadline(); ok {
			timer := time.NewTimer(time.Until(d))
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case <-c.block:
		case <-c.done:
			return errors.New("closed")
		case <-expired:
			return context.DeadlineExceeded
		}
	}
	if c.sent.Add(1) == c.target {
		c.reached <- struct{}{}
	}
	return nil
}

func (c *fanTransport) SendPrepared(ctx context.Context, msg []byte, pm *websocket.PreparedMessage) error {
	if c.counting.Load() {
		c.prepared.Add(1)
	}
	return c.Send(ctx, msg)
}

func (c *fanTransport) Close(error) error {
	c.closeErr.Do(func() { close(c.done) })
	return nil
}

func (c *fanTransport) RemoteAddr() string { return "fan" }

// fanSubscribers opens n in-memory sockets subscribed to /item/5 on srv. Their sends after
// the subscription count into sent; the one that makes it target signals reached.
func fanSubscribers(t *testing.T, srv *Server, n int, sent *atomic.Int64, target int64, reached chan struct{}) []*fanTransport {
	t.Helper()
	var subs []*fanTransport
	for i := range n {
		ct := &fanTransport{in: make(chan []byte, 1), replies: make(chan []byte, 1), done: make(chan struct{}),
			sent: sent, target: target, reached: reached}
		r, _ := http.NewRequest("GET", "/", nil)
		go srv.serve(ct, r)
		ct.in <- []byte(`{"type":"hello","id":1,"version":"2"}`)
		<-ct.replies
		ct.in <- []byte(`{"type":"sub","id":` + strconv.Itoa(i+2) + `,"path":"/item/5"}`)
		<-ct.replies
		ct.counting.Store(true)
		subs = append(subs, ct)
	}
	return subs
}

// TestPublishAllocatesNothingPerDelivery publishes to 1,000 subscribers without a filter and
// counts the allocations of the whole publish, the writers' included: encoding the message
// and preparing it cost a few per publish, a delivery must cost none (a goroutine per
// delivery, as before the writer pool, cost about ten).
func TestPublishAllocatesNothingPerDelivery(t *testing.T) {
	const n = 1000
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	srv.Subscription("/item/{id}", nil)
	var sent atomic.Int64
	reached := make(chan struct{}, 1)
	subs := fanSubscribers(t, srv, n, &sent, n, reached)
	msg := map[string]any{"id": 5, "status": "complete"}
	publish := func() {
		sent.Store(0)
		require.NoError(t, srv.Publish("/item/5", msg, nil))
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the publication did not reach every subscriber")
		}
	}
	publish() // the writers start
	allocs := testing.AllocsPerRun(20, publish)
	t.Logf("%.1f allocations per publish to %d subscribers", allocs, n)
	assert.Less(t, allocs, 50.0, "allocations per publish to %d subscribers: some are made per delivery", n)
	var prepared int64
	for _, s := range subs {
		prepared += s.prepared.Load()
	}
	assert.Equal(t, int64(22*n), prepared, "every delivery went out prepared (AllocsPerRun runs once more to warm up)")
}

// TestBroadcastAllocatesNothingPerDelivery is TestPublishAllocatesNothingPerDelivery for
// Broadcast.
func TestBroadcastAllocatesNothingPerDelivery(t *testing.T) {
	const n = 1000
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	srv.Subscription("/item/{id}", nil)
	var sent atomic.Int64
	reached := make(chan struct{}, 1)
	fanSubscribers(t, srv, n, &sent, n, reached)
	broadcast := func() {
		sent.Store(0)
		require.NoError(t, srv.Broadcast(map[string]any{"status": "up"}, nil))
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the broadcast did not reach every socket")
		}
	}
	broadcast()
	allocs := testing.AllocsPerRun(20, broadcast)
	t.Logf("%.1f allocations per broadcast to %d sockets", allocs, n)
	assert.Less(t, allocs, 50.0, "allocations per broadcast to %d sockets: some are made per delivery", n)
}

// TestBlockedSocketsDoNotHoldUpTheWriters blocks more sockets in their sends than the pool has
// writers, and checks that a publish still reaches the others: writers stuck in a send are
// replaced.
func TestBlockedSocketsDoNotHoldUpTheWriters(t *testing.T) {
	srv := NewServer(nil, &Options{SendTimeout: time.Hour, Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	srv.Subscription("/item/{id}", nil)
	blocked := writerPool.MaxWorkers() * 2
	const free = 100
	var sent atomic.Int64
	reached := make(chan struct{}, 1)
	subs := fanSubscribers(t, srv, blocked+free, &sent, free, reached)
	block := make(chan struct{})
	defer close(block)
	for _, s := range subs[:blocked] {
		s.block = block
	}
	require.NoError(t, srv.Publish("/item/5", map[string]any{"id": 5}, nil))
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d sockets blocked in their sends held up the %d others: %d reached", blocked, free, sent.Load())
	}
}

// TestBlockedSendIsClosedAfterSendTimeout blocks sockets in their sends on the pool's writers,
// which send without a deadline, and checks that SendTimeout still closes them.
func TestBlockedSendIsClosedAfterSendTimeout(t *testing.T) {
	srv := NewServer(nil, &Options{SendTimeout: 100 * time.Millisecond, Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	srv.Subscription("/item/{id}", nil)
	var sent atomic.Int64
	subs := fanSubscribers(t, srv, 3, &sent, 1000, make(chan struct{}, 1))
	block := make(chan struct{})
	defer close(block)
	for _, s := range subs {
		s.block = block
	}
	require.NoError(t, srv.Publish("/item/5", map[string]any{"id": 5}, nil))
	for i, s := range subs {
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("socket %d, blocked in its send, was not closed after SendTimeout", i)
		}
	}
}
