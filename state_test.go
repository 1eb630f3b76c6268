package herald

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memSocket drives one socket of srv over a memTransport, white-box: the test reads the
// server's state directly.
type memSocket struct {
	t    *testing.T
	srv  *Server
	mt   *memTransport
	done chan struct{}
	seen int // replies already returned by next
}

func openMemSocket(t *testing.T, srv *Server, header http.Header) *memSocket {
	t.Helper()
	mt := newMemTransport()
	r, _ := http.NewRequest("GET", "/", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	m := &memSocket{t: t, srv: srv, mt: mt, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		srv.serve(mt, r)
	}()
	t.Cleanup(func() {
		_ = mt.Close(nil)
		<-m.done
	})
	return m
}

func (m *memSocket) send(v any) {
	m.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(m.t, err)
	m.mt.in <- b
}

// next returns the next message the server sent, or fails after 5 s.
func (m *memSocket) next() map[string]any {
	m.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m.mt.mu.Lock()
		if m.seen < len(m.mt.out) {
			b := m.mt.out[m.seen]
			m.seen++
			m.mt.mu.Unlock()
			var v map[string]any
			require.NoError(m.t, json.Unmarshal(b, &v), string(b))
			return v
		}
		m.mt.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	m.t.Fatal("no message from the server within 5 s")
	return nil
}

// gone waits until the server has cleaned sock up (serve may return before: the goroutine
// reading last cleans up, and it may be one that took over reading).
func (m *memSocket) gone(sock *Socket) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m.srv.mu.Lock()
		_, open := m.srv.sockets[sock]
		m.srv.mu.Unlock()
		if !open {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// closeAndWait closes the client's end and waits for the server's cleanup.
func (m *memSocket) closeAndWait(sock *Socket) {
	m.t.Helper()
	_ = m.mt.Close(nil)
	require.True(m.t, m.gone(sock), "the socket was not cleaned up")
}

// socket returns the server's socket (the only one of srv).
func (m *memSocket) socket() *Socket {
	m.t.Helper()
	var sock *Socket
	require.Eventually(m.t, func() bool {
		m.srv.EachSocket(func(s *Socket) bool { sock = s; return false })
		return sock != nil
	}, 5*time.Second, time.Millisecond)
	return sock
}

// socketOf returns the server's socket on this memSocket's transport.
func (m *memSocket) socketOf() *Socket {
	m.t.Helper()
	var sock *Socket
	require.Eventually(m.t, func() bool {
		m.srv.EachSocket(func(s *Socket) bool {
			if s.t == Transport(m.mt) {
				sock = s
				return false
			}
			return true
		})
		return sock != nil
	}, 5*time.Second, time.Millisecond)
	return sock
}

// subscribed reports whether sock is in the subscriber list of path's subscription, and how
// many times it joined through path.
func subscribedTimes(srv *Server, sock *Socket, path string) int {
	sub, _, ok := srv.subs.match(path)
	if !ok {
		return 0
	}
	sub.mu.RLock()
	defer sub.mu.RUnlock()
	n := 0
	if item := sub.items[sock]; item != nil {
		for _, p := range item.paths {
			if p == path {
				n++
			}
		}
	}
	return n
}

// TestConcurrentSubsJoinOnce: two sub messages for one path processed at once (the first
// one's OnSubscribe is slow, so reading is handed over and the second runs beside it) join
// the socket once and run OnSubscribe once; unsub then leaves nothing behind, and
// OnSubscribe and OnUnsubscribe stay paired.
func TestConcurrentSubsJoinOnce(t *testing.T) {
	t.Parallel()
	var subscribes, unsubscribes atomic.Int32
	release := make(chan struct{})
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	srv.Subscription("/feed", &SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			if subscribes.Add(1) == 1 {
				<-release
			}
			return nil
		},
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) { unsubscribes.Add(1) },
	})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2"})
	assert.Equal(t, "hello", c.next()["type"])
	sock := c.socket()
	c.send(map[string]any{"type": "sub", "id": 2, "path": "/feed"})
	c.send(map[string]any{"type": "sub", "id": 3, "path": "/feed"})
	time.Sleep(50 * time.Millisecond) // the second sub is read and processed meanwhile
	close(release)
	ids := map[float64]bool{}
	for range 2 {
		m := c.next()
		assert.Equal(t, "sub", m["type"], m)
		ids[m["id"].(float64)] = true
	}
	assert.Len(t, ids, 2)
	assert.Equal(t, int32(1), subscribes.Load(), "OnSubscribe ran for each of the two subs")
	assert.Equal(t, 1, subscribedTimes(srv, sock, "/feed"))
	c.send(map[string]any{"type": "unsub", "id": 4, "path": "/feed"})
	assert.Equal(t, "unsub", c.next()["type"])
	assert.Equal(t, 0, subscribedTimes(srv, sock, "/feed"), "unsub left the socket subscribed")
	assert.Equal(t, int32(1), unsubscribes.Load())
	c.closeAndWait(sock)
	assert.Equal(t, 0, subscribedTimes(srv, sock, "/feed"), "a closed socket stays subscribed")
	assert.Equal(t, subscribes.Load(), unsubscribes.Load(), "OnSubscribe and OnUnsubscribe are not paired")
}

// TestSubscriptionLimitHoldsUnderConcurrentSubs: subs processed at once cannot pass
// MaxSubscriptions together.
func TestSubscriptionLimitHoldsUnderConcurrentSubs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, MaxSubscriptions: 2})
	srv.Subscription("/item/{id}", &SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			<-release
			return nil
		},
	})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2"})
	c.next()
	sock := c.socket()
	for i := range 5 {
		c.send(map[string]any{"type": "sub", "id": 2 + i, "path": "/item/" + string(rune('a'+i))})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	ok, refused := 0, 0
	for range 5 {
		if m := c.next(); m["statusCode"] == float64(429) {
			refused++
		} else {
			ok++
		}
	}
	assert.Equal(t, 2, ok)
	assert.Equal(t, 3, refused)
	assert.Len(t, sock.Subscriptions(), 2)
}

// TestSubUnsubStormLeavesNothing: subs and unsubs of one path processed at once, then a
// close: the socket ends in no subscriber list, and every OnSubscribe has its OnUnsubscribe.
func TestSubUnsubStormLeavesNothing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	balance := 0
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	srv.Subscription("/storm", &SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			time.Sleep(2 * time.Millisecond) // long enough for reading to be handed over
			mu.Lock()
			balance++
			mu.Unlock()
			return nil
		},
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) {
			mu.Lock()
			balance--
			mu.Unlock()
		},
	})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2"})
	c.next()
	sock := c.socket()
	const n = 40
	for i := range n {
		typ := "sub"
		if i%3 == 2 {
			typ = "unsub"
		}
		c.send(map[string]any{"type": typ, "id": 2 + i, "path": "/storm"})
	}
	for range n {
		c.next()
	}
	assert.LessOrEqual(t, subscribedTimes(srv, sock, "/storm"), 1)
	c.closeAndWait(sock)
	assert.Equal(t, 0, subscribedTimes(srv, sock, "/storm"), "a closed socket stays subscribed")
	mu.Lock()
	assert.Equal(t, 0, balance, "OnSubscribe and OnUnsubscribe are not paired")
	mu.Unlock()
}

// TestCloseDuringOnSubscribePairsOnUnsubscribe: a socket that closes while OnSubscribe runs
// still gets its OnUnsubscribe, and is in no subscriber list afterwards.
func TestCloseDuringOnSubscribePairsOnUnsubscribe(t *testing.T) {
	t.Parallel()
	var subscribes, unsubscribes atomic.Int32
	entered := make(chan struct{})
	release := make(chan struct{})
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	srv.Subscription("/slow", &SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			subscribes.Add(1)
			close(entered)
			<-release
			return nil
		},
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) { unsubscribes.Add(1) },
	})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2"})
	c.next()
	sock := c.socket()
	c.send(map[string]any{"type": "sub", "id": 2, "path": "/slow"})
	<-entered
	sock.closeNow(nil)
	close(release)
	require.True(t, c.gone(sock))
	assert.Equal(t, 0, subscribedTimes(srv, sock, "/slow"))
	assert.Equal(t, int32(1), subscribes.Load())
	assert.Equal(t, int32(1), unsubscribes.Load(), "OnUnsubscribe did not run for a subscription OnSubscribe accepted")
}

// TestAPIFromInsideSubscriptionCallbacks: OnSubscribe may revoke its own path (the pending sub
// is cancelled, not waited for) and cut its user off with RevokeUser, without deadlocking.
func TestAPIFromInsideSubscriptionCallbacks(t *testing.T) {
	t.Parallel()
	var unsubscribes atomic.Int32
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Authenticate: func(r *http.Request) (*Credentials, error) { return &Credentials{User: r.Header.Get("X-User")}, nil }}})
	srv.Subscription("/self-revoking", &SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			return s.Revoke(ctx, path, nil)
		},
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) { unsubscribes.Add(1) },
	})
	srv.Subscription("/ban", &SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			return srv.RevokeUser(s.Credentials().User)
		},
	})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	sock := c.socketOf()
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": map[string]any{"headers": map[string]string{"x-user": "eve"}}})
	require.Equal(t, "hello", c.next()["type"])
	c.send(map[string]any{"type": "sub", "id": 2, "path": "/self-revoking"})
	assert.Equal(t, "revoke", c.next()["type"])
	assert.Equal(t, "sub", c.next()["type"])
	assert.Empty(t, sock.Subscriptions())
	assert.Equal(t, int32(1), unsubscribes.Load())
	c.send(map[string]any{"type": "sub", "id": 3, "path": "/ban"})
	require.True(t, c.gone(sock), "RevokeUser from OnSubscribe did not close the socket")
	assert.Equal(t, 0, subscribedTimes(srv, sock, "/ban"))
}
