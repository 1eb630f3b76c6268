package browser_test

// The servers of TestClient and TestClientThroughProxies (client_test.go): herald's nes server
// with the routes the page uses, a TCP proxy that can go silent or cut every connection, and
// the control server the page acts through.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/browser"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/heraldtest"
)

// The server's heartbeat: the client takes 1.8 s of silence for a lost server.
const (
	clientHeartbeatInterval = 1000 * time.Millisecond
	clientHeartbeatTimeout  = 800 * time.Millisecond
)

// clientHarness is one subtest's servers: the nes server (restartable on its port), a proxy
// to it that can go silent, and the control server the page drives them through.
type clientHarness struct {
	t        *testing.T
	srv      *heraldtest.Server
	nes      *herald.Server
	proxy    *silentProxy
	proxyURL string
	ctl      *httptest.Server

	mu      sync.Mutex
	refused map[string]bool
}

func newClientHarness(t *testing.T) *clientHarness {
	h := &clientHarness{t: t, refused: map[string]bool{}}
	h.nes = h.newNes()
	h.srv = heraldtest.NewServer(t, h.nes)
	h.proxy = newSilentProxy(t, strings.TrimPrefix(h.srv.URL, "ws://"))
	h.proxyURL = "http://" + h.proxy.addr()
	h.ctl = httptest.NewServer(http.HandlerFunc(h.control))
	t.Cleanup(h.ctl.Close)
	return h
}

// newNes builds the nes server: routes as examples/nes's (route id "hello", POST /echo,
// direct auth with Basic john:secret, the /item/{id} subscription whose filter skips a user's
// own updates, custom messages echoed), and the page and the browser modules.
func (h *clientHarness) newNes() *herald.Server {
	mux := http.NewServeMux()
	nes := herald.NewServer(mux, &herald.Options{
		// Pages come from the proxies' origins too: nginx passes its upstream's host on
		// (TestClientThroughProxies).
		Origins:       []string{"127.0.0.1:*"},
		Auth:          &herald.AuthOptions{Type: "direct", Authenticate: johnAuth},
		Headers:       []string{"x-herald-test"},
		MaxChunkChars: 4096,
		Heartbeat:     &herald.Heartbeat{Interval: clientHeartbeatInterval, Timeout: clientHeartbeatTimeout},
		// A stream cut is resumed by the EventSource after its retry time, which must stay
		// well under the client's heartbeat window (1.8 s here; 20 s with the defaults).
		Fallback: &fallback.Options{RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond},
		OnMessage: func(ctx context.Context, s *herald.Socket, message herald.RawMessage) (any, error) {
			if message == nil {
				return map[string]any{}, nil
			}
			return map[string]json.RawMessage{"echo": json.RawMessage(message)}, nil
		},
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>herald browser client</title><p>herald browser client test")
	})
	mux.Handle("GET /herald/", http.StripPrefix("/herald", browser.Handler()))
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Herald-Test", "yes")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "world!")
	})
	nes.Route("hello", http.MethodGet, "/h")
	mux.Handle("GET /auth/h", nes.Authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, "Hello %v", herald.CredentialsFrom(r.Context()).Data["name"])
	})))
	nes.Route("authhello", http.MethodGet, "/auth/h")
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "slow")
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Herald-Test", "yes")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"statusCode":404,"error":"Not Found","message":"No such thing"}`)
	})
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		if s := herald.SocketFrom(r.Context()); s != nil {
			s.Disconnect()
		}
		_, _ = io.WriteString(w, "dropped")
	})
	nes.Subscription("/item/{id}", &herald.SubscriptionOptions{
		Auth: &herald.SubscriptionAuth{Mode: "optional"},
		Filter: func(path string, message any, info herald.FilterInfo) (bool, any) {
			var m struct {
				Updater string `json:"updater"`
			}
			if raw, ok := message.(json.RawMessage); ok {
				_ = json.Unmarshal(raw, &m)
			}
			return info.Credentials == nil || m.Updater == "" || m.Updater != info.Credentials.User, nil
		},
		OnSubscribe: func(ctx context.Context, s *herald.Socket, path string, params map[string]string) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.refused[path] {
				return herald.NewError(http.StatusForbidden, "Refused by the test")
			}
			return nil
		},
	})
	return nes
}

// johnAuth checks Basic john:secret, as examples/nes does; no header means no credentials.
func johnAuth(r *http.Request) (*herald.Credentials, error) {
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(value)
	user, pass, _ := strings.Cut(string(raw), ":")
	if err != nil || user != "john" || pass != "secret" {
		return nil, herald.NewError(http.StatusUnauthorized, "Bad username or password")
	}
	return &herald.Credentials{User: "john", Data: map[string]any{"name": "John Doe"}}, nil
}

// control serves the page's requests to act on the servers: POST /OP with a JSON body.
func (h *clientHarness) control(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Path    string          `json:"path"`
		Message json.RawMessage `json:"message"`
		Paths   []string        `json:"paths"`
		Down    int             `json:"down"`
		N       int             `json:"n"`
		Cuts    int             `json:"cuts"`
		Barrier string          `json:"barrier"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	message := in.Message
	if len(message) == 0 {
		message = json.RawMessage("null")
	}
	var out any = map[string]bool{"ok": true}
	var err error
	switch strings.TrimPrefix(r.URL.Path, "/") {
	case "publish":
		err = h.nes.Publish(in.Path, message, nil)
	case "broadcast":
		err = h.nes.Broadcast(message, nil)
	case "revoke":
		var m any // nil: a revoke without a message
		if string(message) != "null" {
			m = message
		}
		var subs []*herald.Socket
		h.nes.EachSubscriber(in.Path, "", func(s *herald.Socket) bool {
			subs = append(subs, s)
			return true
		})
		for _, s := range subs {
			_ = s.Revoke(r.Context(), in.Path, m)
		}
	case "subscribers":
		n := 0
		h.nes.EachSubscriber(in.Path, "", func(*herald.Socket) bool {
			n++
			return true
		})
		out = map[string]int{"count": n}
	case "drop":
		h.srv.DisconnectAll()
	case "stop":
		h.srv.Stop()
	case "start":
		err = h.start()
	case "restart":
		h.srv.Stop()
		time.Sleep(time.Duration(in.Down) * time.Millisecond)
		err = h.start()
	case "refuse":
		h.mu.Lock()
		h.refused = map[string]bool{}
		for _, p := range in.Paths {
			h.refused[p] = true
		}
		h.mu.Unlock()
	case "freeze":
		h.proxy.freeze()
	case "thaw":
		h.proxy.thaw()
	case "burst":
		var cut int
		cut, err = h.burst(in.Path, in.N, in.Cuts, in.Barrier)
		out = map[string]int{"cut": cut}
	case "cut":
		h.proxy.cut(false)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// burst publishes {n: 1..n} to path, 2 ms apart, cutting the connections of the proxy that
// carry the fallback's way down (event streams, long-polls) cuts times on the way (evenly
// spread), then {barrier: true} to barrier. It returns how many connections it cut. Before each
// cut the publications pause for 400 ms, longer than the stream's retry time (100-300 ms), so
// that the client's stream is back, or its next long-poll is in flight (held by the server),
// when the cut comes.
func (h *clientHarness) burst(path string, n, cuts int, barrier string) (int, error) {
	if n < 1 || n > 1000 || cuts < 0 || cuts >= n || barrier == "" {
		return 0, fmt.Errorf("burst: want 1 <= n <= 1000, 0 <= cuts < n and a barrier path, not n %d, cuts %d, barrier %q", n, cuts, barrier)
	}
	every, cut := n/(cuts+1), 0
	for i := 1; i <= n; i++ {
		if cuts > 0 && i > 1 && (i-1)%every == 0 && (i-1)/every <= cuts {
			time.Sleep(400 * time.Millisecond)
			cut += h.proxy.cut(true)
		}
		if err := h.nes.Publish(path, map[string]int{"n": i}, nil); err != nil {
			return cut, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cut, h.nes.Publish(barrier, map[string]bool{"barrier": true}, nil)
}

// start serves the nes server again on its port. heraldtest.Server.Start fails the test
// through the TB it is given: here one that turns the failure into an error for the page.
func (h *clientHarness) start() error {
	tb := &errTB{TB: h.t}
	h.srv.Start(tb)
	return tb.err
}

// errTB is a testing.TB whose Fatalf records the failure instead of ending the goroutine (the
// control handler's, not the test's).
type errTB struct {
	testing.TB
	err error
}

func (e *errTB) Helper() {}

func (e *errTB) Fatalf(format string, args ...any) { e.err = fmt.Errorf(format, args...) }

// silentProxy is a TCP proxy to the nes server whose open connections can be made silent:
// after freeze, nothing more passes either way on them, and neither side's close reaches the
// other, as when a network drops a connection without telling either end. Connections made
// after freeze pass normally; thaw closes the silent ones.
type silentProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[*proxied]struct{}
	wg    sync.WaitGroup
}

type proxied struct {
	client, server net.Conn
	mu             sync.Mutex
	silent         bool
	request        string // the method and path of the last HTTP request seen going to the server
}

func (p *proxied) isSilent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.silent
}

// sawRequest notes the request line when b, from the client, begins one (proxies and browsers
// write a request's head at once; a body does not begin with a method).
func (p *proxied) sawRequest(b []byte) {
	for _, method := range []string{"GET /", "POST /"} {
		if bytes.HasPrefix(b, []byte(method)) {
			line, _, _ := bytes.Cut(b, []byte(" HTTP/"))
			p.mu.Lock()
			p.request = string(line)
			p.mu.Unlock()
			return
		}
	}
}

// down reports whether the connection's last request is the fallback's way down: an event
// stream or a long-poll.
func (p *proxied) down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.HasSuffix(p.request, "/nes/sse") || strings.HasSuffix(p.request, "/nes/poll")
}

func (p *proxied) close() {
	_ = p.client.Close()
	_ = p.server.Close()
}

func newSilentProxy(t *testing.T, target string) *silentProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &silentProxy{ln: ln, target: target, conns: map[*proxied]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *silentProxy) addr() string { return p.ln.Addr().String() }

func (p *silentProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		pc := &proxied{client: c, server: s}
		p.mu.Lock()
		p.conns[pc] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pc, s, c)
		go p.pipe(pc, c, s)
	}
}

// pipe copies src to dst until either ends; a silent connection's bytes are dropped and its
// end is not passed on.
func (p *silentProxy) pipe(pc *proxied, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && src == pc.client {
			pc.sawRequest(buf[:n])
		}
		if n > 0 && !pc.isSilent() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			break
		}
	}
	if pc.isSilent() {
		return // thaw or the cleanup closes it
	}
	pc.close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

func (p *silentProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.mu.Lock()
		c.silent = true
		c.mu.Unlock()
	}
}

// cut closes every connection, or with downOnly those whose last request was an event stream
// or a long-poll, both sides, as a network failure that both ends notice; it returns how many
// it closed.
func (p *silentProxy) cut(downOnly bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if !downOnly || c.down() {
			c.close()
			n++
		}
	}
	return n
}

func (p *silentProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if c.isSilent() {
			c.close()
			delete(p.conns, c)
		}
	}
}
