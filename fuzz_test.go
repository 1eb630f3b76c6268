package herald

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// memTransport is an in-memory Transport: what the test puts in in comes out of Receive, and
// what the server sends lands in out; the reasons the server closed it with land in reasons.
type memTransport struct {
	in      chan []byte
	mu      sync.Mutex
	out     [][]byte
	reasons []error
	closed  chan struct{}
	once    sync.Once
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

func (m *memTransport) Close(reason error) error {
	m.mu.Lock()
	m.reasons = append(m.reasons, reason)
	m.mu.Unlock()
	m.once.Do(func() { close(m.closed) })
	return nil
}

func (m *memTransport) RemoteAddr() string { return "memory" }

// sent reports whether a message containing s was sent.
func (m *memTransport) sent(s string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, out := range m.out {
		if strings.Contains(string(out), s) {
			return true
		}
	}
	return false
}

// rendezvous holds each callback that meets it until another is running too, or a few
// milliseconds have passed: with reading handed over after a millisecond (handoffDelay), two
// messages of one socket are then processed at the same time.
type rendezvous struct {
	mu      sync.Mutex
	cond    *sync.Cond
	waiting int
	gen     int
}

func newRendezvous() *rendezvous {
	r := &rendezvous{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *rendezvous) meet() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting > 0 { // the other one is here: both go
		r.waiting = 0
		r.gen++
		r.cond.Broadcast()
		return
	}
	r.waiting++
	gen := r.gen
	t := time.AfterFunc(3*time.Millisecond, func() {
		r.mu.Lock()
		if r.gen == gen {
			r.waiting = 0
			r.gen++
			r.cond.Broadcast()
		}
		r.mu.Unlock()
	})
	for r.gen == gen {
		r.cond.Wait()
	}
	t.Stop()
}

// newFuzzServer is a server with routes (ids "hello" and the wildcard "wild"), a route that
// describes the request it gets, a subscription with callbacks, direct auth (X-User names
// the user, X-Fail refuses) and OnMessage (it echoes), all meeting at a rendezvous when r is
// not nil. Its log goes to the returned panicLog.
func newFuzzServer(tb testing.TB, r *rendezvous) (*Server, *panicLog) {
	meet := func() {
		if r != nil {
			r.meet()
		}
	}
	log := &panicLog{errors: true}
	mux := http.NewServeMux()
	mux.HandleFunc("/h", func(w http.ResponseWriter, req *http.Request) {
		meet()
		_, _ = w.Write([]byte("world!"))
	})
	mux.HandleFunc("/describe", func(w http.ResponseWriter, req *http.Request) {
		meet()
		body := make([]byte, 64)
		n, _ := req.Body.Read(body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", req.Header.Get("X-A"))
		_ = json.NewEncoder(w).Encode(map[string]any{"method": req.Method, "url": req.URL.String(), "n": len(req.Header), "body": string(body[:n])})
	})
	srv := NewServer(mux, &Options{
		Heartbeat: &Heartbeat{Disabled: true},
		Headers:   []string{"*"},
		Logger:    slog.New(log),
		Auth: &AuthOptions{Authenticate: func(req *http.Request) (*Credentials, error) {
			meet()
			if req.Header.Get("X-Fail") != "" {
				return nil, errors.New("refused")
			}
			if u := req.Header.Get("X-User"); u != "" {
				return &Credentials{User: u, Scope: req.Header.Values("X-Scope")}, nil
			}
			return nil, nil
		}},
		OnMessage: func(ctx context.Context, s *Socket, m RawMessage) (any, error) {
			meet()
			if len(m) == 0 {
				return nil, nil
			}
			return m, nil
		},
	})
	srv.Route("hello", "GET", "/h")
	srv.Route("wild", "*", "/describe")
	srv.Subscription("/item/{id}", &SubscriptionOptions{
		Auth:          &SubscriptionAuth{Mode: "optional"},
		OnSubscribe:   func(ctx context.Context, s *Socket, path string, params map[string]string) error { meet(); return nil },
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) { meet() },
	})
	tb.Cleanup(srv.Close)
	return srv, log
}

// fuzzEnd is the last message of every fuzzed exchange: its reply (an unknown type, or not
// initialized) says that everything before was read.
const fuzzEnd = `{"type":"fuzz end","id":"fuzz end"}`

// fuzzExchange sends msgs to a new socket of srv, then fuzzEnd, waits for the reply to
// fuzzEnd (or the socket's close), closes the transport and waits for the socket to finish.
// It fails on a hang, a socket closed for a panic (1011), a reply that is not JSON, and on
// anything in log.
func fuzzExchange(t *testing.T, srv *Server, log *panicLog, msgs ...[]byte) {
	mt := newMemTransport()
	r, _ := http.NewRequest("GET", "/", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.serve(mt, r)
	}()
	for _, m := range msgs {
		mt.in <- m
	}
	mt.in <- []byte(fuzzEnd)
	deadline := time.Now().Add(5 * time.Second)
	for !mt.sent(`"fuzz end"`) && time.Now().Before(deadline) {
		select {
		case <-mt.closed:
			deadline = time.Now() // closed by the server: nothing more comes
		case <-time.After(100 * time.Microsecond):
		}
	}
	_ = mt.Close(nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the socket did not finish")
	}
	if lines := log.take(); len(lines) > 0 {
		t.Fatalf("the server logged:\n%s", strings.Join(lines, "\n"))
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for _, reason := range mt.reasons {
		if errors.Is(reason, errPanic) {
			t.Fatalf("the socket was closed for a panic (1011): %v", reason)
		}
	}
	for _, out := range mt.out {
		if !json.Valid(out) {
			t.Fatalf("invalid JSON sent: %s", out)
		}
	}
}

// fuzzSeeds are messages for the corpus: the shapes nes clients send, and hostile content
// (values of the wrong type, empty, nested).
var fuzzSeeds = []string{
	`{"type":"hello","id":1,"version":"2","subs":["/item/5","/nope"]}`,
	`{"type":"hello","id":"a","version":"2","auth":{"headers":{"x-user":"ann","x-scope":["a","b"]}}}`,
	`{"type":"hello","id":1,"version":[["2"]],"auth":{"headers":{"x-fail":{}}}}`,
	`{"type":"hello","id":1,"version":"2","subs":[[],null,"",{"a":1},"/item/1?x"]}`,
	`{"type":"request","id":2,"method":"POST","path":"/describe","headers":{"x-a":[[1e21,null]],"content-type":5},"payload":{"a":1}}`,
	`{"type":"request","id":2,"method":"GET","path":[]}`,
	`{"type":"request","id":2,"method":"GET","path":[null]}`,
	`{"type":"request","id":2,"method":"GET","path":[""]}`,
	`{"type":"request","id":2,"method":["GET"],"path":"hello"}`,
	`{"type":"request","id":2,"method":"GET","path":"wild"}`,
	`{"type":"request","id":2,"method":"GET","path":"/describe?q=%zz","payload":"text"}`,
	`{"type":"request","id":2,"method":"GET","path":"//x","headers":{"authorization":"x"}}`,
	`{"type":"request","id":{"a":[1]},"method":"G E T","path":"/nes/auth"}`,
	`{"type":"request","id":1e400,"method":"GET","path":"/h","headers":"x"}`,
	`{"type":"sub","id":[1],"path":"/item/{id}"}`,
	`{"type":"sub","id":3,"path":["/item/1"]}`,
	`{"type":"unsub","id":3,"path":"/item/5"}`,
	`{"type":"unsub","id":3,"path":{}}`,
	`{"type":"message","id":3,"message":null}`,
	`{"type":"message","id":3}`,
	`{"type":"message","id":3,"message":[[[{"a":"\u2028"}]]]}`,
	`{"type":"reauth","id":4,"auth":{"headers":{"x-user":["bob"]}}}`,
	`{"type":"reauth","id":4,"auth":"token"}`,
	`{"type":5,"id":{}}`,
	`{"type":"ping","id":0}`,
	`not json`,
	`[[[[]]]]`,
}

// FuzzDispatch feeds arbitrary client messages to a socket, one after the other: nothing may
// panic (in a callback of the server's or anywhere else), hang, close the socket with 1011 or
// log an error, and every reply must be valid JSON.
func FuzzDispatch(f *testing.F) {
	for i, a := range fuzzSeeds {
		f.Add([]byte(fuzzSeeds[i%4]), []byte(a))
		f.Add([]byte(a), []byte(fuzzSeeds[(i+7)%len(fuzzSeeds)]))
	}
	srv, log := newFuzzServer(f, nil)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		fuzzExchange(t, srv, log, first, second)
	})
}

// FuzzDispatchConcurrent feeds a hello and then two arbitrary messages that the server
// processes at the same time on one socket (every callback waits for the other message's
// callback, so reading is handed over and both run at once), with the same checks as
// FuzzDispatch.
func FuzzDispatchConcurrent(f *testing.F) {
	for i, a := range fuzzSeeds {
		f.Add([]byte(fuzzSeeds[i%2]), []byte(a), []byte(fuzzSeeds[(i*5+3)%len(fuzzSeeds)]))
	}
	// Pairs whose messages both reach a callback, so that they do run at once.
	for _, pair := range [][2]string{
		{`{"type":"request","id":2,"method":"GET","path":"/h"}`, `{"type":"request","id":3,"method":"POST","path":"/describe","headers":{"x-a":[1,[2]]},"payload":[1]}`},
		{`{"type":"sub","id":2,"path":"/item/1"}`, `{"type":"unsub","id":3,"path":"/item/1"}`},
		{`{"type":"sub","id":2,"path":"/item/1"}`, `{"type":"sub","id":3,"path":"/item/1"}`},
		{`{"type":"message","id":2,"message":{"a":[]}}`, `{"type":"reauth","id":3,"auth":{"headers":{"x-user":"bob"}}}`},
		{`{"type":"reauth","id":2,"auth":{"headers":{"x-fail":"1"}}}`, `{"type":"request","id":3,"method":"GET","path":"hello"}`},
		{`{"type":"request","id":2,"method":"GET","path":"wild"}`, `{"type":"message","id":3}`},
	} {
		f.Add([]byte(`{"type":"hello","id":1,"version":"2"}`), []byte(pair[0]), []byte(pair[1]))
		f.Add([]byte(fuzzSeeds[1]), []byte(pair[1]), []byte(pair[0]))
	}
	srv, log := newFuzzServer(f, newRendezvous())
	f.Fuzz(func(t *testing.T, hello, a, b []byte) {
		fuzzExchange(t, srv, log, hello, a, b)
	})
}
