package herald

// Hostile nes message content (issue 10): values of the wrong type, empty, nested deep or
// long, in every field a client fills. None may panic (a panic closes the socket with 1011 and
// logs a stack: a client could flood the log), take more than linear time, or allocate much
// beyond the message's size.

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/herald-go/herald/internal/protocol"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicLog is a slog.Handler that keeps the server's log lines about panics (and with errors
// set, every line at level Error).
type panicLog struct {
	errors bool
	mu     sync.Mutex
	lines  []string
}

func (p *panicLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *panicLog) WithGroup(string) slog.Handler            { return p }

func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	if strings.Contains(line, "panic") || strings.Contains(line, "goroutine ") || p.errors && r.Level >= slog.LevelError {
		p.mu.Lock()
		p.lines = append(p.lines, line)
		p.mu.Unlock()
	}
	return nil
}

func (p *panicLog) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// take returns the lines kept and forgets them.
func (p *panicLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines
	p.lines = nil
	return lines
}

// newContentServer is a server with a route (id "hello", GET /h), a route that describes the
// request it gets (/describe), a subscription and optional direct auth (the X-User header
// names the user), logging panics to the returned panicLog.
func newContentServer(t *testing.T) (*Server, *panicLog) {
	t.Helper()
	log := &panicLog{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("world!")) })
	mux.HandleFunc("/describe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "x-a": r.Header.Get("X-A"), "n": len(r.Header)})
	})
	srv := NewServer(mux, &Options{
		Heartbeat: &Heartbeat{Disabled: true},
		Logger:    slog.New(log),
		Auth: &AuthOptions{Authenticate: func(r *http.Request) (*Credentials, error) {
			if u := r.Header.Get("X-User"); u != "" {
				return &Credentials{User: u}, nil
			}
			return nil, nil
		}},
		OnMessage: func(ctx context.Context, s *Socket, m RawMessage) (any, error) { return m, nil },
	})
	srv.Route("hello", "GET", "/h")
	srv.Subscription("/item/{id}", nil)
	return srv, log
}

func (c *rawClient) sendText(frame string) {
	c.t.Helper()
	require.NoError(c.t, wsutil.WriteClientText(c.conn, []byte(frame)))
}

// TestRequestPathNotAStringIs400 is the regression test for a request whose path was an array
// rendering as "" ([], [null], [""], arrays that end empty): the server indexed the empty
// string, panicked, logged the stack and closed the socket with 1011. The reference accepts
// only a string path (anything else fails hapi's route-id assertion and takes its process
// down); herald answers 400 and the socket goes on.
func TestRequestPathNotAStringIs400(t *testing.T) {
	t.Parallel()
	srv, log := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	for i, path := range []string{`[]`, `[null]`, `[""]`, `[[]]`, `[[[""]]]`, `[[],[]]`, `[null,[]]`, `["/h"]`, `["hello"]`, `5`, `{}`, `true`, `{"0":"/"}`} {
		id := 10 + i
		c.sendText(fmt.Sprintf(`{"type":"request","id":%d,"method":"GET","path":%s}`, id, path))
		m := c.next(5 * time.Second)
		assert.Equal(t, float64(id), m["id"], "path %s", path)
		assert.Equal(t, float64(400), m["statusCode"], "path %s: %v", path, m)
		assert.Equal(t, map[string]any{"error": "Bad Request", "message": "Invalid request path"}, m["payload"], "path %s", path)
	}
	c.sendText(`{"type":"request","id":2,"method":"GET","path":"hello"}`)
	m := c.next(5 * time.Second)
	assert.Equal(t, "world!", m["payload"], "the socket still serves")
	assert.Empty(t, log.get(), "panics logged")
}

// TestRequestMethodNotAString: a method that is not a string is refused with 400 for a path
// (the reference's shot fails to upper-case it and its process dies) and ignored for a route
// id, as the reference ignores it.
func TestRequestMethodNotAString(t *testing.T) {
	t.Parallel()
	srv, log := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	for i, method := range []string{`["GET"]`, `5`, `{}`, `true`, `[[]]`} {
		c.sendText(fmt.Sprintf(`{"type":"request","id":%d,"method":%s,"path":"/h"}`, 10+i, method))
		m := c.next(5 * time.Second)
		assert.Equal(t, float64(400), m["statusCode"], "method %s: %v", method, m)
		assert.Equal(t, map[string]any{"error": "Bad Request", "message": "Invalid request method"}, m["payload"], "method %s", method)
		c.sendText(fmt.Sprintf(`{"type":"request","id":%d,"method":%s,"path":"hello"}`, 20+i, method))
		m = c.next(5 * time.Second)
		assert.Equal(t, "world!", m["payload"], "method %s with a route id: %v", method, m)
	}
	assert.Empty(t, log.get(), "panics logged")
}

// deepString is a JSON array nested depth deep around a string of n bytes.
func deepString(depth, n int) string {
	return strings.Repeat("[", depth) + `"` + strings.Repeat("a", n) + `"` + strings.Repeat("]", depth)
}

// TestDeeplyNestedValuesCostLinearTime is the regression test for values nested thousands
// deep around a long string, in every field the server turns into a string the JavaScript
// way (a request header, a direct-auth header, a hello's version): each took the server time
// proportional to depth × size (45 s for one message of 1 MiB nested some thousands deep,
// before authentication, 32 of them in flight per socket). Each is answered now within a
// bound that is generous for a loaded machine under the race detector; the old code needed
// minutes for these. The rendering is checked too: a nested array's string is its elements'.
func TestDeeplyNestedValuesCostLinearTime(t *testing.T) {
	t.Parallel()
	const depth, size = 9000, 1 << 20
	deep := deepString(depth, size)
	const bound = 30 * time.Second
	srv, log := newContentServer(t)
	url := newTestServer(t, srv)

	t.Run("hello version", func(t *testing.T) {
		c := dialRaw(t, url, nil)
		c.sendText(`{"type":"hello","id":1,"version":` + deep + `}`)
		m := c.next(bound)
		assert.Equal(t, float64(400), m["statusCode"])
		msg, _ := m["payload"].(map[string]any)["message"].(string)
		// The version is rendered whole (which is what took the time) and echoed up to 64 bytes.
		assert.Equal(t, "Incorrect protocol version (expected 2 but received "+strings.Repeat("a", maxEchoedVersion)+"...)", msg)
	})
	t.Run("direct auth header", func(t *testing.T) {
		c := dialRaw(t, url, nil)
		c.sendText(`{"type":"hello","id":1,"version":"2","auth":{"headers":{"x-a":` + deep + `,"x-user":[[["ann"]]]}}}`)
		m := c.next(bound)
		assert.Equal(t, "hello", m["type"], "%v", m)
	})
	c := dialRaw(t, url, nil)
	c.hello(nil)
	t.Run("request header", func(t *testing.T) {
		c.sendText(`{"type":"request","id":2,"method":"GET","path":"/describe","headers":{"x-a":` + deep + `}}`)
		m := c.next(bound)
		require.Equal(t, float64(200), m["statusCode"], "%v", m)
		assert.Equal(t, strings.Repeat("a", size), m["payload"].(map[string]any)["x-a"])
	})
	t.Run("request method, with a route id", func(t *testing.T) {
		c.sendText(`{"type":"request","id":3,"method":` + deep + `,"path":"hello"}`)
		m := c.next(bound)
		assert.Equal(t, "world!", m["payload"])
	})
	t.Run("request path", func(t *testing.T) {
		c.sendText(`{"type":"request","id":4,"method":"GET","path":` + deep + `}`)
		m := c.next(bound)
		assert.Equal(t, float64(400), m["statusCode"])
	})
	assert.Empty(t, log.get(), "panics logged")
}

// TestNestingPastTheBoundIs400: a message nested deeper than protocol.MaxDepth is answered
// "Cannot parse message", and the socket goes on.
func TestNestingPastTheBoundIs400(t *testing.T) {
	t.Parallel()
	srv, log := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	c.sendText(`{"type":"request","id":2,"method":"GET","path":"/describe","headers":{"x-a":` + deepString(10000, 1) + `}}`)
	m := c.next(10 * time.Second)
	assert.Equal(t, float64(400), m["statusCode"])
	assert.Equal(t, "Cannot parse message", m["payload"].(map[string]any)["message"])
	assert.NotContains(t, m, "id", "an unparsed message has no id to echo")
	c.sendText(`{"type":"request","id":3,"method":"GET","path":"/describe","headers":{"x-a":` + deepString(9990, 1) + `}}`)
	m = c.next(10 * time.Second)
	assert.Equal(t, "a", m["payload"].(map[string]any)["x-a"])
	assert.Empty(t, log.get(), "panics logged")
}

// TestRequestHeaderValues: header values of any type reach the handler as JavaScript would
// turn them into strings; names equal but for case: the last wins, as in the reference (the
// order of a Go map decided before).
func TestRequestHeaderValues(t *testing.T) {
	t.Parallel()
	srv, log := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	for i, tc := range []struct{ value, want string }{
		{`"v"`, "v"}, {`["a","b"]`, "a,b"}, {`[["a",null],[]]`, "a,,"}, {`5`, "5"}, {`1e21`, "1e+21"}, {`1e400`, "Infinity"},
		{`{}`, "[object Object]"}, {`null`, "null"}, {`true`, "true"}, {`[{"x":1},-0]`, "[object Object],0"},
	} {
		c.sendText(fmt.Sprintf(`{"type":"request","id":%d,"method":"GET","path":"/describe","headers":{"x-a":%s}}`, 10+i, tc.value))
		m := c.next(5 * time.Second)
		require.Equal(t, float64(200), m["statusCode"], "%v", m)
		assert.Equal(t, tc.want, m["payload"].(map[string]any)["x-a"], tc.value)
	}
	for i := range 20 {
		c.sendText(fmt.Sprintf(`{"type":"request","id":%d,"method":"GET","path":"/describe","headers":{"x-a":"1","X-A":"2","x-A":"3"}}`, 30+i))
		m := c.next(5 * time.Second)
		assert.Equal(t, "3", m["payload"].(map[string]any)["x-a"])
	}
	for i, headers := range []string{`"str"`, `[1,2]`, `5`, `null`, `{}`, `[]`} {
		c.sendText(fmt.Sprintf(`{"type":"request","id":%d,"method":"GET","path":"/describe","headers":%s}`, 60+i, headers))
		m := c.next(5 * time.Second)
		assert.Equal(t, float64(200), m["statusCode"], "headers %s: %v", headers, m)
	}
	assert.Empty(t, log.get(), "panics logged")
}

// manyHeaders is a headers object with n members.
func manyHeaders(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%x":0`, i)
	}
	return b.String() + "}"
}

// TestTooManyRequestHeaders: a request may carry maxRequestHeaders headers; past them it is
// answered 431. An Authorization header is still refused wherever it is.
func TestTooManyRequestHeaders(t *testing.T) {
	t.Parallel()
	srv, _ := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	c.sendText(`{"type":"request","id":2,"method":"GET","path":"/describe","headers":` + manyHeaders(maxRequestHeaders) + `}`)
	m := c.next(5 * time.Second)
	require.Equal(t, float64(200), m["statusCode"], "%v", m)
	assert.Equal(t, float64(maxRequestHeaders), m["payload"].(map[string]any)["n"])
	c.sendText(`{"type":"request","id":3,"method":"GET","path":"/describe","headers":` + manyHeaders(100000) + `}`)
	m = c.next(5 * time.Second)
	assert.Equal(t, float64(431), m["statusCode"])
	assert.Equal(t, "Too many request headers (the limit is 2000)", m["payload"].(map[string]any)["message"])
	h := manyHeaders(10)
	c.sendText(`{"type":"request","id":4,"method":"GET","path":"/describe","headers":` + h[:len(h)-1] + `,"AuThorization":"x"}}`)
	m = c.next(5 * time.Second)
	assert.Equal(t, "Cannot include an Authorization header", m["payload"].(map[string]any)["message"])
}

// TestRequestAllocationIsBounded: what a request allocates while it is turned into an
// http.Request stays within a small factor of its size, or a fixed amount for its headers,
// whatever its shape. (Not parallel: it reads the process's allocation counter.)
func TestRequestAllocationIsBounded(t *testing.T) {
	srv := NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &Options{Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	r, _ := http.NewRequest("GET", "/", nil)
	sock := newSocket(srv, newMemTransport(), r, "x")
	const size = 1 << 20
	for _, tc := range []struct{ name, headers string }{
		{"many headers", manyHeaders(maxRequestHeaders)},
		{"too many headers", manyHeaders(size / 8)},
		{"duplicate headers", "{" + strings.Repeat(`"a":"b",`, size/8) + `"a":"b"}`},
		{"a deep header", `{"x-a":` + deepString(9000, size) + `}`},
		{"an array of objects", `{"x-a":[` + strings.Repeat(`{},`, size/3) + `{}]}`},
		{"an array of numbers", `{"x-a":[` + strings.Repeat(`1e20,`, size/5) + `1]}`},
		{"an array of escaped strings", `{"x-a":[` + strings.Repeat(`"\u00e9",`, size/9) + `""]}`},
		{"a long string", `{"x-a":"` + strings.Repeat(`x`, size) + `"}`},
	} {
		msg := `{"type":"request","id":1,"method":"GET","path":"/h","headers":` + tc.headers + `}`
		m, err := protocol.Decode([]byte(msg))
		require.NoError(t, err)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _ = sock.processRequest(context.Background(), m)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes, %d allocated", tc.name, len(msg), alloc)
		// "[object Object]" is 5.3 times "{}," and the largest factor; headers cost about
		// 200 bytes each.
		assert.LessOrEqual(t, alloc, uint64(8*len(msg)+maxRequestHeaders*400), tc.name)
	}
}

// TestUnsubPathNotAString: the reference looks an unsub's path up as a property name, so a
// path that is not a string unsubscribes the string it turns into (["/item/5"] is
// "/item/5"); herald took only strings and left the subscription in place.
func TestUnsubPathNotAString(t *testing.T) {
	t.Parallel()
	srv, log := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	subs := func() (paths []string) {
		srv.EachSocket(func(s *Socket) bool {
			paths = append(paths, s.Subscriptions()...)
			return true
		})
		return paths
	}
	for i, path := range []string{`["/item/5"]`, `[["/item/5"]]`, `"/item/5"`} {
		c.sendText(fmt.Sprintf(`{"type":"sub","id":%d,"path":"/item/5"}`, 10+i))
		require.Equal(t, "sub", c.next(5 * time.Second)["type"])
		require.Equal(t, []string{"/item/5"}, subs())
		c.sendText(fmt.Sprintf(`{"type":"unsub","id":%d,"path":%s}`, 20+i, path))
		assert.Equal(t, map[string]any{"type": "unsub", "id": float64(20 + i)}, c.next(5*time.Second))
		assert.Empty(t, subs(), "after unsub %s", path)
	}
	for i, path := range []string{`[]`, `{}`, `5`, `null`, `[[[]]]`} {
		c.sendText(fmt.Sprintf(`{"type":"unsub","id":%d,"path":%s}`, 30+i, path))
		assert.Equal(t, map[string]any{"type": "unsub", "id": float64(30 + i)}, c.next(5*time.Second))
	}
	assert.Empty(t, log.get(), "panics logged")
}

// TestMessageWithoutMessage: an OnMessage that echoes what it is given, for a message that
// carries none, is answered without a message (as the reference answers undefined), not 500.
func TestMessageWithoutMessage(t *testing.T) {
	t.Parallel()
	srv, _ := newContentServer(t)
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.hello(nil)
	c.sendText(`{"type":"message","id":2}`)
	assert.Equal(t, map[string]any{"type": "message", "id": float64(2)}, c.next(5*time.Second))
	c.sendText(`{"type":"message","id":3,"message":null}`)
	assert.Equal(t, map[string]any{"type": "message", "id": float64(3), "message": nil}, c.next(5*time.Second))
}
