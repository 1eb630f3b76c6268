package herald

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// memTransport is an in-memory Transport: what the test puts in in comes out of Receive, and
// what the server sends lands in out.
type memTransport struct {
	in     chan []byte
	mu     sync.Mutex
	out    [][]byte
	closed chan struct{}
	once   sync.Once
}

func newMemTransport() *memTransport {
	return &memTransport{in: make(chan []byte, 64), closed: make(chan struct{})}
}

func (m *memTransport) Receive(ctx context.Context) ([]byte, error) {
	select {
	case b := <-m.in:
		return b, nil
	case <-m.closed:
		return nil, errors.New("closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *memTransport) Send(ctx context.Context, msg []byte) error {
	select {
	case <-m.closed:
		return errors.New("closed")
	default:
	}
	m.mu.Lock()
	m.out = append(m.out, msg)
	m.mu.Unlock()
	return nil
}

func (m *memTransport) Close(error) error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

func (m *memTransport) RemoteAddr() string { return "memory" }

// FuzzDispatch feeds arbitrary client messages to a socket: nothing may panic or hang, and
// every reply must be valid JSON.
func FuzzDispatch(f *testing.F) {
	f.Add([]byte(`{"type":"hello","id":1,"version":"2","subs":["/item/5","/nope"]}`), []byte(`{"type":"request","id":2,"method":"POST","path":"/x","payload":{"a":1}}`))
	f.Add([]byte(`{"type":"hello","id":"a","version":"2","auth":{"headers":{"authorization":"x"}}}`), []byte(`{"type":"sub","id":[1],"path":"/item/{id}"}`))
	f.Add([]byte(`{"type":5,"id":{}}`), []byte(`not json`))
	f.Add([]byte(`{"type":"hello","id":1,"version":"2"}`), []byte(`{"type":"message","id":3,"message":null}`))
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}), &Options{
		Heartbeat: &Heartbeat{Disabled: true},
		Auth:      &AuthOptions{Authenticate: func(*http.Request) (*Credentials, error) { return &Credentials{User: "u"}, nil }},
		OnMessage: func(ctx context.Context, s *Socket, m RawMessage) (any, error) { return m, nil },
	})
	srv.Subscription("/item/{id}", &SubscriptionOptions{Auth: &SubscriptionAuth{Mode: "optional"}})
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		mt := newMemTransport()
		r, _ := http.NewRequest("GET", "/", nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.serve(mt, r)
		}()
		mt.in <- first
		mt.in <- second
		mt.in <- []byte(`{"type":"ping","id":9}`)
		time.Sleep(time.Millisecond)
		_ = mt.Close(nil)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the socket did not finish")
		}
		mt.mu.Lock()
		defer mt.mu.Unlock()
		for _, out := range mt.out {
			if !json.Valid(out) {
				t.Fatalf("invalid JSON sent: %s", out)
			}
		}
	})
}
