package browser_test

// Real-peer tests: HeraldSocket (herald-socket.js) in Chromium, under the official @hapi/nes
// browser client, against a herald nes server: over each transport chosen alone and in the
// default order; through proxies that cut every connection mid-flow, strip Upgrade, or pass
// the upgrade and drop the frames; through Debian's nginx (streaming, and buffering
// everything); over HTTP/2. internal/testpeers/browser-heraldsocket.js drives the browser and
// reports what the page saw; the checks are here.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/browser"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/internal/testpeers"
)

// testPage loads the official nes client (window.nes) and HeraldSocket, as an application's
// page would.
const testPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>HeraldSocket test</title>
<script src="/nes.js"></script>
<script type="module">
import { HeraldSocket } from '/herald/herald-socket.js';
window.HeraldSocket = HeraldSocket;
window.__ready = true;
</script>
</head><body></body></html>
`

// peerEnv is the server side of the browser tests: a herald nes server (main), served over
// HTTP/1.1 and HTTP/2, a second one (other: another node, with a grace period of 2 s and
// streams that rotate after 1 KiB), and the proxies in front of them.
type peerEnv struct {
	main, other     *herald.Server
	h1, h2, otherH1 *httptest.Server // main over HTTP/1.1 and HTTP/2 (TLS), other over HTTP/1.1
	cut             *relay           // to main, cut by /burst
	gate            *relay           // to main, its mode set by /gate
	sw              *relay           // to main, then to other after /switch
	out             *relay           // to other, refusing every connection during /outage
	cuts            atomic.Int64     // connections cut by /burst, since /cuts last asked
	viaSquid        atomic.Int64     // requests to main's fallback that came through squid
	wg              sync.WaitGroup   // the goroutines of the routes
	nesJS           []byte
}

func newPeerEnv(t *testing.T) *peerEnv {
	nesJS, err := os.ReadFile(filepath.Join(testpeers.Dir(), "node_modules", "@hapi", "nes", "lib", "client.js"))
	require.NoError(t, err, "the official nes client (run `make peers`)")
	e := &peerEnv{nesJS: nesJS}
	e.main = e.newNes(0, 0)
	e.other = e.newNes(2*time.Second, 1024)
	e.h1 = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/nes/") && strings.Contains(strings.ToLower(r.Header.Get("Via")), "squid") {
			e.viaSquid.Add(1)
		}
		e.main.ServeHTTP(w, r)
	}))
	e.h2 = httptest.NewUnstartedServer(e.main)
	e.h2.EnableHTTP2 = true
	e.h2.StartTLS()
	e.otherH1 = httptest.NewServer(e.other)
	mainAddr, otherAddr := e.h1.Listener.Addr().String(), e.otherH1.Listener.Addr().String()
	e.cut = startRelay(t, mainAddr)
	e.gate = startRelay(t, mainAddr)
	e.sw = startRelay(t, mainAddr)
	e.out = startRelay(t, otherAddr)
	t.Cleanup(func() {
		e.wg.Wait()
		e.main.Close()
		e.other.Close()
		e.h1.Close()
		e.h2.Close()
		e.otherH1.Close()
	})
	return e
}

// newNes returns a nes server with the test page, the modules and the routes the cases use.
// Zero grace and streamBytes mean fallback's defaults.
func (e *peerEnv) newNes(grace time.Duration, streamBytes int) *herald.Server {
	mux := http.NewServeMux()
	nes := herald.NewServer(mux, &herald.Options{
		// The pages come from the proxies' origins too.
		Origins: []string{"127.0.0.1:*"},
		// Heartbeats within the longer cases (drop-frames, nginx buffering: a few seconds), with
		// room for a loaded machine.
		Heartbeat: &herald.Heartbeat{Interval: 2 * time.Second, Timeout: time.Second},
		// One message at a time, so that replies come back in the order the page sent its
		// messages: the api case checks that both ways keep the order.
		MaxInFlight: 1,
		// Resumes come quickly; POSTs carry at most 4 messages and 256 KiB, so that the page's
		// bursts are split into several batches.
		Fallback: &fallback.Options{RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond,
			MaxMessages: 4, MaxBody: 256 << 10, Grace: grace, MaxStreamBytes: streamBytes},
		OnMessage: func(ctx context.Context, s *herald.Socket, m herald.RawMessage) (any, error) {
			return map[string]json.RawMessage{"echo": json.RawMessage(m)}, nil
		},
	})
	nes.Subscription("/items", nil)

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, testPage)
	})
	mux.HandleFunc("GET /nes.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(e.nesJS)
	})
	mux.Handle("/herald/", http.StripPrefix("/herald", browser.Handler()))
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "world!") })
	nes.Route("hello", "GET", "/h")
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.Copy(w, r.Body)
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		var m json.RawMessage
		if json.NewDecoder(r.Body).Decode(&m) != nil {
			http.Error(w, "want JSON", http.StatusBadRequest)
			return
		}
		_ = nes.Publish("/items", m, nil)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		s := herald.SocketFrom(r.Context())
		if s == nil {
			http.Error(w, "only over nes", http.StatusBadRequest)
			return
		}
		s.Disconnect() // after this reply
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"dropped":true}`)
	})
	// /burst publishes {n: 1..N} to /items, 10 ms apart, cutting every connection of the cut
	// relay `cuts` times on the way.
	mux.HandleFunc("POST /burst", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ N, Cuts int }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.N < 1 || in.N > 1000 {
			http.Error(w, "want {n, cuts}", http.StatusBadRequest)
			return
		}
		every := in.N / (in.Cuts + 1)
		e.later(0, func() {
			for i := 1; i <= in.N; i++ {
				if in.Cuts > 0 && i > 1 && (i-1)%every == 0 && (i-1)/every <= in.Cuts {
					e.cuts.Add(int64(e.cut.cutAll()))
				}
				_ = nes.Publish("/items", map[string]int{"n": i}, nil)
				time.Sleep(10 * time.Millisecond)
			}
		})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /cuts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.cuts.Swap(0))
	})
	mux.HandleFunc("POST /gate", func(w http.ResponseWriter, r *http.Request) {
		mode, ok := map[string]relayMode{"pass": relayPass, "strip": relayStrip, "drop": relayDrop}[r.URL.Query().Get("mode")]
		if !ok {
			http.Error(w, "mode: pass, strip or drop", http.StatusBadRequest)
			return
		}
		e.gate.mode.Store(int32(mode))
		w.WriteHeader(http.StatusNoContent)
	})
	// /switch moves the sw relay to the other server, as a restart behind a proxy: the sessions
	// and tickets of main mean nothing there.
	// The switch comes 50 ms after the reply, which it would cut off otherwise.
	mux.HandleFunc("POST /switch", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ To string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		to, ok := map[string]*httptest.Server{"main": e.h1, "other": e.otherH1}[in.To]
		if !ok {
			http.Error(w, "want {to: main|other}", http.StatusBadRequest)
			return
		}
		e.later(50*time.Millisecond, func() { e.sw.setTarget(to.Listener.Addr().String()) })
		w.WriteHeader(http.StatusNoContent)
	})
	// /outage {ms} makes the out relay refuse every connection for ms, its current ones cut.
	mux.HandleFunc("POST /outage", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ MS int }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.MS < 1 || in.MS > 10000 {
			http.Error(w, "want {ms}", http.StatusBadRequest)
			return
		}
		e.later(50*time.Millisecond, func() {
			e.out.mode.Store(int32(relayRefuse))
			e.out.cutAll()
			time.Sleep(time.Duration(in.MS) * time.Millisecond)
			e.out.mode.Store(int32(relayPass))
		})
		w.WriteHeader(http.StatusNoContent)
	})
	return nes
}

// later runs fn on a goroutine after d; the test waits for it before it ends.
func (e *peerEnv) later(d time.Duration, fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		time.Sleep(d)
		fn()
	}()
}

// relayMode is what a relay does with a connection that asks for a WebSocket upgrade.
type relayMode int32

const (
	relayPass   relayMode = iota // relays it as any other
	relayStrip                   // removes Upgrade and Connection from the request, as a proxy that does not know WebSocket: the server answers a plain GET
	relayDrop                    // relays the handshake, then drops every frame both ways
	relayRefuse                  // closes every new connection at once, upgrade or not (a server that is down)
)

// relay is a TCP proxy to a target that the test controls: its mode for WebSocket upgrades,
// its target, and cutAll, which closes every connection it carries, both sides, mid-flow.
type relay struct {
	target atomic.Pointer[string]
	ln     net.Listener
	mode   atomic.Int32
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, target string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &relay{ln: ln, conns: map[net.Conn]struct{}{}}
	r.target.Store(&target)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(in)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		r.cutAll()
		r.wg.Wait()
	})
	return r
}

func (r *relay) url() string { return "http://" + r.ln.Addr().String() }

// setTarget sends new connections to target, and cuts the current ones.
func (r *relay) setTarget(target string) {
	r.target.Store(&target)
	r.cutAll()
}

// track adds c to the connections cutAll closes.
func (r *relay) track(c net.Conn) {
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
}

func (r *relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	_ = c.Close()
}

// cutAll closes every connection the relay carries, as a network failure would, and returns
// how many it closed (both sides of each count).
func (r *relay) cutAll() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.conns)
	for c := range r.conns {
		_ = c.Close()
		delete(r.conns, c)
	}
	return n
}

func (r *relay) serve(in net.Conn) {
	r.track(in)
	defer r.untrack(in)
	if relayMode(r.mode.Load()) == relayRefuse {
		return
	}
	out, err := net.Dial("tcp", *r.target.Load())
	if err != nil {
		return
	}
	r.track(out)
	defer r.untrack(out)
	br := bufio.NewReader(in)
	head, err := readHead(br)
	if err != nil {
		return
	}
	upgrade := bytes.Contains(bytes.ToLower(head), []byte("\nupgrade: websocket"))
	mode := relayMode(r.mode.Load())
	switch {
	case upgrade && mode == relayStrip:
		head = stripUpgrade(head)
	case upgrade && mode == relayDrop:
		if _, err := out.Write(head); err != nil {
			return
		}
		resp, err := readHead(bufio.NewReader(out))
		if err != nil {
			return
		}
		if _, err := in.Write(resp); err != nil {
			return
		}
		go func() { _, _ = io.Copy(io.Discard, out) }() // the server's frames vanish
		_, _ = io.Copy(io.Discard, br)                  // and the page's
		return
	}
	if _, err := out.Write(head); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(out, br)
		_ = out.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(in, out)
	_ = in.Close()
	_ = out.Close()
	<-done
}

// readHead reads an HTTP message head, through its empty line.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for len(head) < 64<<10 {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return nil, err
		}
		if len(line) <= 2 && strings.TrimSpace(string(line)) == "" {
			return head, nil
		}
	}
	return nil, errors.New("head too long")
}

// stripUpgrade removes Upgrade and Connection from a request head and asks for the connection
// to close after the answer.
func stripUpgrade(head []byte) []byte {
	lines := strings.SplitAfter(string(head), "\r\n")
	var b strings.Builder
	for i, l := range lines {
		name, _, _ := strings.Cut(strings.ToLower(l), ":")
		if i > 0 && (name == "upgrade" || name == "connection") {
			continue
		}
		if l == "\r\n" {
			b.WriteString("Connection: close\r\n")
		}
		b.WriteString(l)
	}
	return []byte(b.String())
}

// plannedCase is one case of the driver's plan.
type plannedCase struct {
	Name    string         `json:"name"`
	Page    string         `json:"page"`
	Proxy   string         `json:"proxy,omitempty"` // the browser's HTTP proxy for this page
	Kind    string         `json:"kind"`
	Args    map[string]any `json:"args"`
	Timeout int            `json:"timeout"`
	check   func(t *testing.T, r *pageResult)
}

// pageResult is what the page reported for one case (the fields of every kind).
type pageResult struct {
	Case       string `json:"case"`
	Error      string `json:"error"`
	MS         int    `json:"ms"`
	WebSockets int    `json:"webSockets"`

	// api
	Constants           []int             `json:"constants"`
	ConfiguredConstants []int             `json:"configuredConstants"`
	Invalid             map[string]string `json:"invalid"`
	Initial             struct {
		ReadyState int    `json:"readyState"`
		Transport  string `json:"transport"`
		URL        string `json:"url"`
		OPEN       int    `json:"OPEN"`
		CLOSED     int    `json:"CLOSED"`
	} `json:"initial"`
	SendConnecting string `json:"sendConnecting"`
	SendClosing    string `json:"sendClosing"`
	Open           struct {
		ReadyState int      `json:"readyState"`
		Transport  string   `json:"transport"`
		Log        []string `json:"log"`
	} `json:"open"`
	Hello         json.RawMessage `json:"hello"`
	EchoesInOrder bool            `json:"echoesInOrder"`
	ClosingState  int             `json:"closingState"`
	Close         struct {
		Type       string `json:"type"`
		AfterMS    int    `json:"afterMs"`
		Code       int    `json:"code"`
		Reason     string `json:"reason"`
		WasClean   bool   `json:"wasClean"`
		ReadyState int    `json:"readyState"`
	} `json:"close"`
	Log      []string `json:"log"`
	Relative struct {
		URL          string `json:"url"`
		ClosingState int    `json:"closingState"`
		Close        struct {
			Code     int      `json:"code"`
			WasClean bool     `json:"wasClean"`
			Log      []string `json:"log"`
		} `json:"close"`
	} `json:"relative"`
	CloseErrors map[string]string `json:"-"` // close_* keys

	// features, cut, back
	ConnectMS  int             `json:"connectMs"`
	Transports []string        `json:"transports"`
	Hello2     json.RawMessage `json:"hello2"`
	Echo       json.RawMessage `json:"echo"`
	Concurrent int             `json:"concurrent"`
	Drop       json.RawMessage `json:"drop"`
	Updates    []struct {
		N int `json:"n"`
	} `json:"updates"`
	FinalState int `json:"finalState"`
	Sockets    int `json:"sockets"`
	Closes     []struct {
		Transport string `json:"transport"`
		Code      int    `json:"code"`
		WasClean  bool   `json:"wasClean"`
	} `json:"closes"`
	Events struct {
		Connects    int `json:"connects"`
		Disconnects []struct {
			WillReconnect bool `json:"willReconnect"`
			Code          int  `json:"code"`
		} `json:"disconnects"`
		Errors []string `json:"errors"`
	} `json:"events"`
	Got        []int          `json:"got"`
	CutConns   int            `json:"cutConns"`
	Requests   map[string]int `json:"requests"` // the page's requests to the fallback, by path
	Failed     map[string]int `json:"failed"`   // those that failed on the network
	Transport2 string         `json:"transport2"`
	Hello2OK   bool           `json:"hello2ok"`
}

// TestPeerBrowserHeraldSocket runs every case in one Chromium, one after the other.
func TestPeerBrowserHeraldSocket(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	chromium := testpeers.Chromium(t)
	e := newPeerEnv(t)
	direct := e.h1.URL + "/"
	wsOf := func(page string) string { return "ws" + strings.TrimPrefix(page, "http") }
	fast := 1500 // ms: fallbackTimeout where a transport must be given up

	var cases []plannedCase
	add := func(c plannedCase) { cases = append(cases, c) }

	// The socket's own interface, with nes messages written by hand, over each transport.
	for _, tr := range []string{"websocket", "sse", "poll"} {
		opts := map[string]any{"transports": []string{tr}}
		if tr == "sse" {
			opts["fallbackURL"] = "/nes" // relative, resolved against the page
		}
		add(plannedCase{Name: "api/" + tr, Page: direct, Kind: "api", Args: map[string]any{"ws": wsOf(direct), "options": opts},
			check: func(t *testing.T, r *pageResult) { checkAPI(t, r, tr, wsOf(direct)) }})
	}
	// The official client over each transport alone, then in the default order.
	for _, tr := range []string{"websocket", "sse", "poll", ""} {
		name, opts := "features/"+tr, any(map[string]any{"transports": []string{tr}})
		want := tr
		if tr == "" {
			name, opts, want = "features/default", nil, "websocket"
		}
		add(plannedCase{Name: name, Page: direct, Kind: "features", Args: map[string]any{"ws": wsOf(direct), "options": opts},
			check: func(t *testing.T, r *pageResult) {
				checkFeatures(t, r, want, want)
				if tr == "sse" || tr == "poll" {
					assert.Zero(t, r.WebSockets, "no WebSocket is tried when it is not among the transports")
				}
				assert.Empty(t, r.Failed, "no request to the fallback failed")
				if tr == "sse" {
					assert.Equal(t, 2, r.Requests["/nes/sse"], "one stream per connection")
					assert.GreaterOrEqual(t, r.Requests["/nes/send"], 4, "12 requests at once in batches of at most 4 messages")
				}
			}})
	}
	// A page of another origin (the cut relay's port; nothing is cut here): the stream, the
	// polls and the POSTs are CORS requests with credentials, the POSTs preflighted (the
	// Herald-Ticket header).
	for _, tr := range []string{"sse", "poll"} {
		add(plannedCase{Name: "cross-origin/" + tr, Page: e.cut.url() + "/", Kind: "features",
			Args: map[string]any{"ws": wsOf(direct), "options": map[string]any{"transports": []string{tr}}},
			check: func(t *testing.T, r *pageResult) {
				checkFeatures(t, r, tr, tr)
				assert.Empty(t, r.Failed, "no request to the fallback failed")
			}})
	}
	// Every connection between browser and server cut twice during a burst of publications:
	// each arrives once, in order, and the page never sees a disconnection.
	for _, tr := range []string{"sse", "poll"} {
		page := e.cut.url() + "/"
		add(plannedCase{Name: "cut/" + tr, Page: page, Kind: "cut",
			Args: map[string]any{"ws": wsOf(page), "options": map[string]any{"transports": []string{tr}}, "n": 60, "cuts": 2},
			check: func(t *testing.T, r *pageResult) {
				want := make([]int, 60)
				for i := range want {
					want[i] = i + 1
				}
				assert.Equal(t, want, r.Got, "every publication once, in order")
				assert.Equal(t, []string{tr}, r.Transports)
				assert.Equal(t, 1, r.Sockets, "the session survived: no new socket")
				assert.Empty(t, r.Events.Disconnects, "the page saw no disconnection")
				assert.JSONEq(t, `"world!"`, string(r.Hello))
				assert.Positive(t, r.CutConns, "connections were cut")
				if tr == "sse" {
					// Two cuts close together may fall on one stream (the second before the
					// resume): at least one resume, not necessarily two.
					assert.GreaterOrEqual(t, r.Requests["/nes/sse"], 2, "the stream was resumed after the cuts")
				}
				// Chromium retries by itself a request cut on a reused connection before any
				// answer (the polls, held by the server, mostly are): the page may see no failure.
				t.Logf("requests %v, failed %v", r.Requests, r.Failed)
			}})
	}
	// The server behind the proxy is replaced by another (a restart: its tickets mean nothing
	// there): the stream's resume gets a reset, a poll or POST gets 404; the page sees the
	// connection lost (1006) and the client reconnects, resubscribed, to the new server.
	for _, tr := range []string{"sse", "poll"} {
		page := e.sw.url() + "/"
		add(plannedCase{Name: "restart/" + tr, Page: page, Kind: "restart",
			Args: map[string]any{"ws": wsOf(page), "options": map[string]any{"transports": []string{tr}}},
			check: func(t *testing.T, r *pageResult) {
				assert.Equal(t, []string{tr, tr}, r.Transports)
				if assert.Len(t, r.Events.Disconnects, 1) {
					assert.Equal(t, 1006, r.Events.Disconnects[0].Code, "the session was lost")
					assert.True(t, r.Events.Disconnects[0].WillReconnect)
				}
				assert.JSONEq(t, `"world!"`, string(r.Hello))
				if assert.Len(t, r.Updates, 1) {
					assert.Equal(t, 7, r.Updates[0].N, "resubscribed on the new server")
				}
			}})
	}
	// The network between page and server down for longer than the session's grace period
	// (2 s on the other server): the socket closes with 1006 once the grace has passed, not
	// before; afterwards a new socket works.
	for _, tr := range []string{"sse", "poll"} {
		page := e.out.url() + "/"
		add(plannedCase{Name: "outage/" + tr, Page: page, Kind: "outage",
			Args: map[string]any{"ws": wsOf(page), "options": map[string]any{"transports": []string{tr}}, "ms": 3500},
			check: func(t *testing.T, r *pageResult) {
				assert.Equal(t, 1006, r.Close.Code)
				assert.False(t, r.Close.WasClean)
				assert.GreaterOrEqual(t, r.Close.AfterMS, 1900, "the session's grace period (2 s) was waited out")
				assert.Less(t, r.Close.AfterMS, 3500, "closed before the network came back")
				assert.Equal(t, tr, r.Transport2, "a new socket works afterwards")
				assert.True(t, r.Hello2OK)
			}})
	}
	// Streams that the server ends on purpose every KiB (herald-rotate; the other server): the
	// EventSource resumes each, and the burst arrives whole, in order, without a disconnection.
	outPage := e.out.url() + "/"
	add(plannedCase{Name: "rotate/sse", Page: outPage, Kind: "cut",
		Args: map[string]any{"ws": wsOf(outPage), "options": map[string]any{"transports": []string{"sse"}}, "n": 60, "cuts": 0},
		check: func(t *testing.T, r *pageResult) {
			want := make([]int, 60)
			for i := range want {
				want[i] = i + 1
			}
			assert.Equal(t, want, r.Got, "every publication once, in order")
			assert.Equal(t, 1, r.Sockets)
			assert.Empty(t, r.Events.Disconnects)
			assert.GreaterOrEqual(t, r.Requests["/nes/sse"], 3, "the streams rotated")
		}})
	// A message larger than the server takes in one POST (maxBody, 256 KiB): the socket closes
	// with 1009, as a WebSocket server closes on a message too big.
	for _, tr := range []string{"sse", "poll"} {
		add(plannedCase{Name: "too-big/" + tr, Page: direct, Kind: "tooBig",
			Args: map[string]any{"ws": wsOf(direct), "options": map[string]any{"transports": []string{tr}}, "size": 300 << 10},
			check: func(t *testing.T, r *pageResult) {
				assert.Equal(t, 1009, r.Close.Code)
				assert.False(t, r.Close.WasClean)
			}})
	}
	// WebSocket blocked: a proxy that strips Upgrade (the handshake fails at once), one that
	// passes the upgrade and drops the frames (the hello gets no answer within fallbackTimeout,
	// and is said again over the stream); each reconnection tries WebSocket again first.
	gatePage := e.gate.url() + "/"
	add(plannedCase{Name: "blocked/strip-upgrade", Page: gatePage, Kind: "features",
		Args: map[string]any{"ws": wsOf(gatePage), "options": nil, "gateMode": "strip"},
		check: func(t *testing.T, r *pageResult) {
			checkFeatures(t, r, "sse", "sse")
			assert.Equal(t, 2, r.WebSockets, "a WebSocket was tried at each connection")
		}})
	add(plannedCase{Name: "blocked/drop-frames", Page: gatePage, Kind: "features", Timeout: 30000,
		Args: map[string]any{"ws": wsOf(gatePage), "options": map[string]any{"fallbackTimeout": fast}, "gateMode": "drop"},
		check: func(t *testing.T, r *pageResult) {
			checkFeatures(t, r, "sse", "sse")
			assert.Equal(t, 2, r.WebSockets, "a WebSocket was tried at each connection")
			assert.GreaterOrEqual(t, r.ConnectMS, fast, "the WebSocket had its fallbackTimeout to answer")
		}})
	add(plannedCase{Name: "blocked/back-to-websocket", Page: gatePage, Kind: "back",
		Args: map[string]any{"ws": wsOf(gatePage), "options": nil},
		check: func(t *testing.T, r *pageResult) {
			assert.Equal(t, []string{"sse", "websocket"}, r.Transports, "the next connection after the proxy let WebSocket through")
			assert.JSONEq(t, `"world!"`, string(r.Hello))
		}})
	// Debian's nginx in front: it does not pass Upgrade; with its default buffering the stream
	// flows (X-Accel-Buffering: no), and told to buffer everything it holds the stream back, so
	// the page ends on long-polling.
	for _, buffered := range []bool{false, true} {
		front := testpeers.StartNginx(t, e.h1.URL, buffered) + "/"
		name, want := "nginx/streaming", "sse"
		if buffered {
			name, want = "nginx/buffering", "poll"
		}
		add(plannedCase{Name: name, Page: front, Kind: "features", Timeout: 30000,
			Args: map[string]any{"ws": wsOf(front), "options": map[string]any{"fallbackTimeout": fast}},
			check: func(t *testing.T, r *pageResult) {
				checkFeatures(t, r, want, want)
				assert.Equal(t, 2, r.WebSockets, "a WebSocket was tried at each connection")
			}})
	}
	// Debian's squid as the browser's proxy, with its default rules: it refuses CONNECT to the
	// server's port (the WebSocket's way through an HTTP proxy) and passes plain requests and
	// streamed responses, so the page ends on the event stream.
	squid := testpeers.StartSquid(t)
	add(plannedCase{Name: "squid/default", Page: direct, Proxy: squid, Kind: "features", Timeout: 30000,
		Args: map[string]any{"ws": wsOf(direct), "options": map[string]any{"fallbackTimeout": fast}},
		check: func(t *testing.T, r *pageResult) {
			checkFeatures(t, r, "sse", "sse")
			assert.Equal(t, 2, r.WebSockets, "a WebSocket was tried at each connection")
			assert.Positive(t, e.viaSquid.Load(), "the fallback's requests came through squid (Via)")
		}})
	// HTTP/2 (TLS): the stream, the polls and the POSTs share one connection.
	h2 := e.h2.URL + "/"
	add(plannedCase{Name: "h2/default", Page: h2, Kind: "features",
		Args: map[string]any{"ws": wsOf(h2), "options": nil},
		check: func(t *testing.T, r *pageResult) {
			t.Logf("%+v", r.Transports)
			checkFeatures(t, r, "websocket", "websocket")
		}})
	for _, tr := range []string{"sse", "poll"} {
		add(plannedCase{Name: "h2/" + tr, Page: h2, Kind: "features",
			Args:  map[string]any{"ws": wsOf(h2), "options": map[string]any{"transports": []string{tr}}},
			check: func(t *testing.T, r *pageResult) { checkFeatures(t, r, tr, tr) }})
	}

	// HERALD_BROWSER_CASES, a regular expression, runs only the cases whose names match it.
	if pattern := os.Getenv("HERALD_BROWSER_CASES"); pattern != "" {
		re := regexp.MustCompile(pattern)
		cases = slices.DeleteFunc(cases, func(c plannedCase) bool { return !re.MatchString(c.Name) })
	}
	plan, err := json.Marshal(map[string]any{"chromium": chromium, "cases": cases})
	require.NoError(t, err)
	p := testpeers.Start(t, "browser-heraldsocket.js", string(plan))
	var head struct{ Browser string }
	require.NoError(t, json.Unmarshal([]byte(p.Line(t, 60*time.Second)), &head))
	t.Logf("Chromium %s", head.Browser)
	for _, c := range cases {
		wait := 20 * time.Second
		if c.Timeout > 0 {
			wait = time.Duration(c.Timeout) * time.Millisecond
		}
		line := p.Line(t, wait+10*time.Second)
		var r pageResult
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		var raw map[string]any
		_ = json.Unmarshal([]byte(line), &raw)
		r.CloseErrors = map[string]string{}
		for k, v := range raw {
			if s, ok := v.(string); ok && strings.HasPrefix(k, "close_") {
				r.CloseErrors[strings.TrimPrefix(k, "close_")] = s
			}
		}
		require.Equal(t, c.Name, r.Case)
		t.Run(c.Name, func(t *testing.T) {
			t.Logf("%d ms", r.MS)
			require.Empty(t, r.Error)
			c.check(t, &r)
		})
	}
	assert.JSONEq(t, `{"done":true}`, p.Line(t, 10*time.Second))
}

// checkAPI checks the api case: the socket as a WebSocket, over transport tr.
func checkAPI(t *testing.T, r *pageResult, tr, ws string) {
	assert.Equal(t, []int{0, 1, 2, 3}, r.Constants)
	assert.Equal(t, []int{0, 1, 2, 3}, r.ConfiguredConstants, "configured classes keep the constants")
	for _, name := range []string{"transport", "empty", "twice", "timeout", "unknown", "constructorOption"} {
		assert.Equal(t, "TypeError", r.Invalid[name], "invalid option %s", name)
	}
	assert.Equal(t, "SyntaxError", r.Invalid["url"], "an ftp URL")

	assert.Equal(t, 0, r.Initial.ReadyState)
	assert.Equal(t, "", r.Initial.Transport, "no transport before open")
	assert.Equal(t, ws, r.Initial.URL)
	assert.Equal(t, 1, r.Initial.OPEN)
	assert.Equal(t, 3, r.Initial.CLOSED)
	assert.Equal(t, "InvalidStateError", r.SendConnecting)

	assert.Equal(t, 1, r.Open.ReadyState)
	assert.Equal(t, tr, r.Open.Transport)
	assert.Equal(t, []string{"onopen", "listener"}, r.Open.Log, "onopen and listeners, in the order set; a removed listener is not called")
	var hello struct {
		DataType string `json:"dataType"`
		Origin   string `json:"origin"`
		Message  struct {
			Type      string
			ID        int
			Socket    string
			Heartbeat struct{ Interval, Timeout int }
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal(r.Hello, &hello))
	assert.Equal(t, "string", hello.DataType)
	assert.Equal(t, strings.TrimSuffix(ws, "/"), hello.Origin)
	assert.Equal(t, "hello", hello.Message.Type)
	assert.Equal(t, 1, hello.Message.ID)
	assert.NotEmpty(t, hello.Message.Socket)
	assert.Equal(t, 2000, hello.Message.Heartbeat.Interval)
	assert.True(t, r.EchoesInOrder, "20 messages sent at once come back in order, unchanged")

	for _, name := range []string{"code1001", "code2999", "code5000"} {
		assert.Equal(t, "InvalidAccessError", r.CloseErrors[name], name)
	}
	assert.Equal(t, "SyntaxError", r.CloseErrors["reason124"])
	assert.Equal(t, "SyntaxError", r.CloseErrors["reasonUnicode"], "124 bytes of UTF-8")
	assert.Equal(t, 2, r.ClosingState)
	assert.Equal(t, "ignored", r.SendClosing)
	assert.Equal(t, "close", r.Close.Type)
	assert.Equal(t, 4000, r.Close.Code)
	assert.Equal(t, "bye é", r.Close.Reason)
	assert.True(t, r.Close.WasClean)
	assert.Equal(t, 3, r.Close.ReadyState)
	assert.NotContains(t, r.Log, "error")

	host := strings.TrimSuffix(ws, "/")
	assert.Equal(t, host+"/some/path?q=1", r.Relative.URL, "resolved against the page, without the fragment")
	assert.Equal(t, 2, r.Relative.ClosingState)
	assert.Equal(t, 1006, r.Relative.Close.Code, "closed before it opened")
	assert.False(t, r.Relative.Close.WasClean)
	assert.Equal(t, []string{"error"}, r.Relative.Close.Log)
}

// checkFeatures checks the features case: the official client over transport first, then
// again (after the server dropped the socket) over second.
func checkFeatures(t *testing.T, r *pageResult, first, second string) {
	assert.Equal(t, []string{first, second}, r.Transports)
	assert.JSONEq(t, `"world!"`, string(r.Hello))
	assert.JSONEq(t, `{"echo":{"hi":"ünïcødé 🎉"}}`, string(r.Echo))
	assert.Equal(t, 12, r.Concurrent, "every concurrent request answered to its caller, whole")
	assert.JSONEq(t, `{"dropped":true}`, string(r.Drop))
	assert.JSONEq(t, `"world!"`, string(r.Hello2))
	if assert.Len(t, r.Updates, 2) {
		assert.Equal(t, 1, r.Updates[0].N)
		assert.Equal(t, 2, r.Updates[1].N, "the subscription came back with the reconnection")
	}
	assert.Equal(t, 3, r.FinalState, "CLOSED after disconnect")
	assert.Equal(t, 2, r.Sockets)
	if assert.Len(t, r.Closes, 2) {
		// The server's close: 1005 over WebSocket (a close frame without a code, as hapi's),
		// the session's close code over the fallback.
		want := map[string]int{"websocket": 1005, "sse": 1000, "poll": 1000}
		assert.Equal(t, want[first], r.Closes[0].Code, "the server dropped the first socket")
		assert.True(t, r.Closes[0].WasClean)
		assert.Equal(t, second, r.Closes[1].Transport)
		assert.Equal(t, 1005, r.Closes[1].Code, "disconnect() closes without a code")
		assert.True(t, r.Closes[1].WasClean)
	}
	assert.Equal(t, 2, r.Events.Connects)
	if assert.Len(t, r.Events.Disconnects, 2, "the server's drop, then disconnect()") {
		assert.True(t, r.Events.Disconnects[0].WillReconnect)
		assert.False(t, r.Events.Disconnects[1].WillReconnect)
	}
	assert.Empty(t, r.Events.Errors)
}
