package fallback_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/fallback"
)

// protos are the HTTP versions the Go client's tests run over.
var protos = []string{"HTTP/1.1", "HTTP/2"}

// testTimeout bounds every wait of a test.
const testTimeout = 10 * time.Second

// harness is a fallback.Server whose Accept runs serve, over httptest.
type harness struct {
	t    *testing.T
	srv  *fallback.Server
	ts   *httptest.Server
	opts fallback.Options
	base string // the endpoints' base: ts.URL + "/nes"

	accepted chan *fallback.Session

	mu      sync.Mutex
	running int
	ends    map[*fallback.Session]chan error
	streams int // requests to the stream endpoint, for rotation
	protos  map[int]int
}

// serveFunc serves one session until it ends, returning why.
type serveFunc func(s *fallback.Session) error

// newHarness starts a server of sessions over proto ("HTTP/1.1" or "HTTP/2", with TLS) with
// opts (nil for the defaults, short retry times always), each served by serve. The server and
// every session are closed when the test ends, and the test waits for every Accept to return.
// setup, when given, configures the http.Server before it starts.
func newHarness(t *testing.T, proto string, opts *fallback.Options, serve serveFunc, setup ...func(*http.Server)) *harness {
	t.Helper()
	h := &harness{t: t, accepted: make(chan *fallback.Session, 256), ends: map[*fallback.Session]chan error{},
		protos: map[int]int{}}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.Sessions == nil {
		h.opts.Sessions = fallback.NewMemorySessions()
	}
	if h.opts.RetryMin == 0 {
		h.opts.RetryMin, h.opts.RetryMax = 10*time.Millisecond, 20*time.Millisecond
	}
	h.opts.Accept = func(s *fallback.Session) {
		h.mu.Lock()
		h.running++
		end := make(chan error, 1)
		h.ends[s] = end
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			h.running--
			h.mu.Unlock()
		}()
		select {
		case h.accepted <- s:
		default:
		}
		end <- serve(s)
	}
	srv, err := fallback.NewServer(&h.opts)
	require.NoError(t, err)
	h.srv = srv
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.Endpoint(r) == fallback.EndpointStream {
			h.mu.Lock()
			h.streams++
			h.protos[r.ProtoMajor]++
			h.mu.Unlock()
		}
		srv.ServeHTTP(w, r)
	})
	h.ts = httptest.NewUnstartedServer(handler)
	h.ts.Config.ErrorLog = log.New(io.Discard, "", 0) // cut connections make TLS handshake errors
	for _, f := range setup {
		f(h.ts.Config)
	}
	switch proto {
	case "HTTP/2":
		h.ts.EnableHTTP2 = true
		h.ts.StartTLS()
	default:
		h.ts.Start()
	}
	h.base = h.ts.URL + "/nes"
	t.Cleanup(h.close)
	return h
}

// close ends every session and stream, then the server, and waits for every Accept.
func (h *harness) close() {
	h.srv.Close()
	h.ts.Close()
	deadline := time.Now().Add(testTimeout)
	for {
		h.mu.Lock()
		n := h.running
		h.mu.Unlock()
		if n == 0 && tableLen(h.opts.Sessions) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Errorf("after the server closed, %d Accept calls still run and %d sessions are in the table", n, tableLen(h.opts.Sessions))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// session waits for the next session Accept was given.
func (h *harness) session() *fallback.Session {
	h.t.Helper()
	select {
	case s := <-h.accepted:
		return s
	case <-time.After(testTimeout):
		h.t.Fatal("no session accepted")
		return nil
	}
}

// endOf waits for serve to return for s, and returns its error.
func (h *harness) endOf(s *fallback.Session, within time.Duration) error {
	h.t.Helper()
	h.mu.Lock()
	end := h.ends[s]
	h.mu.Unlock()
	require.NotNil(h.t, end, "session unknown to the harness")
	select {
	case err := <-end:
		end <- err // for another look
		return err
	case <-time.After(within):
		h.t.Fatalf("the session did not end within %v", within)
		return nil
	}
}

// streamCount returns how many requests the stream endpoint has had.
func (h *harness) streamCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams
}

// client returns an HTTP client for raw requests to the server.
func (h *harness) client() *http.Client { return h.ts.Client() }

// dial opens a Conn to the harness over the transport named by poll.
func (h *harness) dial(poll bool, o *fallback.DialOptions) *fallback.Conn {
	h.t.Helper()
	var opts fallback.DialOptions
	if o != nil {
		opts = *o
	}
	opts.Poll = poll
	if opts.HTTPClient == nil {
		if h.ts.TLS != nil {
			opts.TLSConfig = h.ts.Client().Transport.(*http.Transport).TLSClientConfig
		}
		opts.Proxy = noProxy
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := fallback.Dial(ctx, h.base, &opts)
	require.NoError(h.t, err)
	return c
}

func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

// tableEmpty waits until the Sessions table t holds no session.
func tableEmpty(t *testing.T, table fallback.Sessions, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return tableLen(table) == 0 }, within, 5*time.Millisecond,
		"sessions left in the table: %d", tableLen(table))
}

func tableLen(table fallback.Sessions) int {
	n := 0
	table.Range(func(*fallback.Session) bool { n++; return true })
	return n
}

// Serving functions.

// echo sends back each message received.
func echo(s *fallback.Session) error {
	ctx := context.Background()
	for {
		m, err := s.Receive(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(ctx, m); err != nil {
			return err
		}
	}
}

// collect sends each message received to got.
func collect(got chan<- string) serveFunc {
	return func(s *fallback.Session) error {
		for {
			m, err := s.Receive(context.Background())
			if err != nil {
				return err
			}
			got <- string(m)
		}
	}
}

// idle receives and drops messages until the session ends.
func idle(s *fallback.Session) error {
	for {
		if _, err := s.Receive(context.Background()); err != nil {
			return err
		}
	}
}

// Raw requests.

// openData is the data of an open event.
type openData struct {
	Ticket      string `json:"ticket"`
	Resumed     bool   `json:"resumed"`
	Seq         uint64 `json:"seq"`
	MaxBody     int64  `json:"maxBody"`
	MaxMessages int    `json:"maxMessages"`
	Grace       int64  `json:"grace"`
}

func parseOpen(t *testing.T, data string) openData {
	t.Helper()
	var o openData
	require.NoError(t, json.Unmarshal([]byte(data), &o), "open event data %q", data)
	require.NotEmpty(t, o.Ticket, "open event data %q", data)
	return o
}

// rawStream is a stream opened by hand.
type rawStream struct {
	t      *testing.T
	resp   *http.Response
	dec    *eventsource.Decoder
	cancel context.CancelFunc
}

// openStream opens base/sse with the headers in hdr (pairs of name and value), expecting 200.
func openStream(t *testing.T, hc *http.Client, base string, hdr ...string) *rawStream {
	t.Helper()
	st, status := tryStream(t, hc, base, hdr...)
	require.Equal(t, http.StatusOK, status)
	return st
}

// tryStream opens base/sse and returns the stream when the answer is 200, and the status.
func tryStream(t *testing.T, hc *http.Client, base string, hdr ...string) (*rawStream, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sse", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	st := &rawStream{t: t, resp: resp, dec: eventsource.NewDecoder(resp.Body, 1<<20, ""), cancel: cancel}
	t.Cleanup(st.close)
	return st, resp.StatusCode
}

// next returns the next event.
func (st *rawStream) next() eventsource.Message {
	st.t.Helper()
	m, err := st.dec.Next()
	require.NoError(st.t, err)
	return m
}

// expect returns the next event, which must be of type typ.
func (st *rawStream) expect(typ string) eventsource.Message {
	st.t.Helper()
	m := st.next()
	require.Equal(st.t, typ, m.Type, "event %+v", m)
	return m
}

// ended reports whether the stream ends (after the events still to come, which must be none
// but a comment).
func (st *rawStream) end() error {
	_, err := st.dec.Next()
	return err
}

func (st *rawStream) close() {
	st.cancel()
	_ = st.resp.Body.Close()
}

// answer is an answer to a raw POST.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to base/endpoint with the headers in hdr (pairs of name and value);
// Content-Type is application/json unless hdr says otherwise.
func post(t *testing.T, hc *http.Client, base, endpoint, body string, hdr ...string) answer {
	t.Helper()
	return postReader(t, hc, base, endpoint, strings.NewReader(body), hdr...)
}

func postReader(t *testing.T, hc *http.Client, base, endpoint string, body io.Reader, hdr ...string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+endpoint, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// pollEvent is one event of a poll's answer.
type pollEvent struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	Data  string `json:"data"`
}

// events decodes a poll's answer, which must be 200.
func (a answer) events(t *testing.T) []pollEvent {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, "poll answered %s", a.body)
	var v struct {
		Events []pollEvent `json:"events"`
	}
	require.NoError(t, json.Unmarshal(a.body, &v), "poll answered %s", a.body)
	require.NotNil(t, v.Events, "poll answered %s", a.body)
	return v.Events
}

// openPoll opens a session with a poll, and returns its open event's data.
func openPoll(t *testing.T, hc *http.Client, base string, hdr ...string) openData {
	t.Helper()
	ev := post(t, hc, base, fallback.EndpointPoll, `{}`, hdr...).events(t)
	require.Len(t, ev, 1)
	require.Equal(t, fallback.EventOpen, ev[0].Event)
	o := parseOpen(t, ev[0].Data)
	require.Equal(t, o.Ticket+".0", ev[0].ID)
	return o
}

// batchBody is the JSON of a batch.
func batchBody(seq uint64, msgs ...string) string {
	if msgs == nil {
		msgs = []string{}
	}
	b, _ := json.Marshal(map[string]any{"seq": seq, "messages": msgs})
	return string(b)
}

// Cutting connections.

// cutter dials connections for an http.Transport and closes them all on demand.
type cutter struct {
	mu    sync.Mutex
	conns []net.Conn
	cuts  int
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.conns = append(c.conns, conn)
	c.mu.Unlock()
	return conn, nil
}

// cut closes every connection dialled so far, and reports how many.
func (c *cutter) cut() int {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.cuts++
	c.mu.Unlock()
	for _, conn := range conns {
		_ = conn.Close()
	}
	return len(conns)
}

// httpClient returns a client whose connections c dials; over TLS (HTTP/2 allowed) when
// tlsConf is set.
func (c *cutter) httpClient(tlsConf *tls.Config) *http.Client {
	tr := &http.Transport{DialContext: c.dial, ForceAttemptHTTP2: true}
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf.Clone()
	}
	return &http.Client{Transport: tr}
}

// tlsConfig is the client TLS configuration of the harness's server, nil without TLS.
func (h *harness) tlsConfig() *tls.Config {
	if h.ts.TLS == nil {
		return nil
	}
	return h.ts.Client().Transport.(*http.Transport).TLSClientConfig
}

// readN reads n messages from c.
func readN(t *testing.T, c *fallback.Conn, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	got := make([]string, 0, n)
	for len(got) < n {
		m, err := c.Read(ctx)
		require.NoError(t, err, "after %d messages of %d", len(got), n)
		got = append(got, string(m))
	}
	return got
}

var _ = bytes.NewReader
