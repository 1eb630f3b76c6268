package herald

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/websocket"
)

// syncBuffer is a log destination that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// originRequest sends a request with an Origin header to the server at base and returns the
// status, the body and the response's headers.
func originRequest(t *testing.T, method, url, origin string, header http.Header) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	if res.StatusCode == http.StatusSwitchingProtocols {
		return res.StatusCode, "", res.Header // the body is the connection: not read
	}
	got, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return res.StatusCode, string(got), res.Header
}

var pollHeader = http.Header{"Content-Type": {"application/json"}}

var upgradeHeader = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
	"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}

// TestOriginsOneRuleForEveryTransport: Options.Origins decides for the WebSocket upgrade, the
// fallback's stream and the auth endpoint alike; a refusal is a 403 that names the origin and
// herald's option, and a line at Info level on the Logger with the reason.
func TestOriginsOneRuleForEveryTransport(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	srv := NewServer(nil, &Options{
		Origins:   []string{"http://localhost:*", "https://*.app.test"},
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Heartbeat: &Heartbeat{Disabled: true},
		Auth: &AuthOptions{Type: "token", Password: strings.Repeat("p", 32),
			Authenticate: func(r *http.Request) (*Credentials, error) { return &Credentials{User: "ann"}, nil }},
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.Close() })

	endpoints := []struct {
		transport, method, path string
		header                  http.Header
		okStatus                int
	}{
		{"websocket", "GET", "/", upgradeHeader, http.StatusSwitchingProtocols},
		{"fallback", "POST", "/nes/poll", pollHeader, http.StatusOK},
		{"auth endpoint", "GET", "/nes/auth", nil, http.StatusOK},
	}
	for _, e := range endpoints {
		t.Run(e.transport, func(t *testing.T) {
			status, body, _ := originRequest(t, e.method, hs.URL+e.path, "https://evil.test", e.header)
			assert.Equal(t, http.StatusForbidden, status)
			assert.Contains(t, body, `https://evil.test`)
			assert.Contains(t, body, "herald.Options.Origins", "the refusal names the option of the nes server")
			assert.Contains(t, logs.String(), "transport="+quoteIfNeeded(e.transport))

			for _, origin := range []string{"http://localhost:5173", "https://www.app.test", ""} {
				status, body, h := originRequest(t, e.method, hs.URL+e.path, origin, e.header)
				assert.NotEqual(t, http.StatusForbidden, status, "%s: %s", origin, body)
				if e.okStatus != 0 {
					assert.Equal(t, e.okStatus, status, "%s: %s", origin, body)
				}
				if e.transport == "auth endpoint" && origin != "" {
					assert.Equal(t, origin, h.Get("Access-Control-Allow-Origin"))
					assert.Equal(t, "true", h.Get("Access-Control-Allow-Credentials"))
				}
			}
		})
	}
	assert.Contains(t, logs.String(), "level=INFO msg=\"herald: origin refused\"")
	assert.Contains(t, logs.String(), "origin=https://evil.test")
	assert.Contains(t, logs.String(), "reason=\"neither the server's host nor listed in Options.Origins\"")

	// A preflight for the auth endpoint (a page sending Authorization) is answered.
	status, _, h := originRequest(t, "OPTIONS", hs.URL+"/nes/auth", "http://localhost:3000",
		http.Header{"Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"}})
	assert.Equal(t, http.StatusNoContent, status)
	assert.Equal(t, "authorization", h.Get("Access-Control-Allow-Headers"))
	assert.Equal(t, "http://localhost:3000", h.Get("Access-Control-Allow-Origin"))
}

// quoteIfNeeded renders a value as slog's text handler does.
func quoteIfNeeded(s string) string {
	if strings.Contains(s, " ") {
		return `"` + s + `"`
	}
	return s
}

// TestOriginsHint: the 403 of an origin on the server's host but another port (a development
// server's page) says exactly what to add.
func TestOriginsHint(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	status, body, _ := originRequest(t, "GET", hs.URL, "http://127.0.0.1:5173", upgradeHeader)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, `add "http://127.0.0.1:5173" to herald.Options.Origins`)
	assert.Contains(t, body, strings.TrimPrefix(hs.URL, "http://"), "names the server's host")
	// Without Origins, the server's own host passes.
	status, _, _ = originRequest(t, "GET", hs.URL, hs.URL, upgradeHeader)
	assert.Equal(t, http.StatusSwitchingProtocols, status)
}

// TestOriginsOldFieldsStillWork: the deprecated Options.Origin and Options.WebSocket's
// OriginPatterns and CheckOrigin keep working, and now hold for every transport.
func TestOriginsOldFieldsStillWork(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    Options
		allowed string
		refused string
		message string
	}{
		{name: "Origin", opts: Options{Origin: []string{"https://a.test"}},
			allowed: "https://a.test", refused: "https://b.test", message: "herald.Options.Origins"},
		//lint:ignore SA1019 the deprecated field keeps working
		{name: "WebSocket.OriginPatterns", opts: Options{WebSocket: &websocket.Options{OriginPatterns: []string{"*.a.test"}}},
			allowed: "https://x.a.test", refused: "https://a.test", message: "herald.Options.Origins"},
		{name: "WebSocket.Origins", opts: Options{WebSocket: &websocket.Options{Origins: []string{"a.test"}}},
			allowed: "http://a.test", refused: "http://b.test", message: "herald.Options.Origins"},
		{name: "WebSocket.CheckOrigin", opts: Options{Origins: []string{"*"}, WebSocket: &websocket.Options{
			CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://c.test" }}},
			allowed: "https://c.test", refused: "https://a.test", message: "CheckOrigin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.Heartbeat = &Heartbeat{Disabled: true}
			srv := NewServer(nil, &tc.opts)
			hs := httptest.NewServer(srv)
			t.Cleanup(func() { srv.Close(); hs.Close() })
			status, body, _ := originRequest(t, "GET", hs.URL, tc.refused, upgradeHeader)
			assert.Equal(t, http.StatusForbidden, status)
			assert.Contains(t, body, tc.message)
			status, body, _ = originRequest(t, "GET", hs.URL, tc.allowed, upgradeHeader)
			assert.Equal(t, http.StatusSwitchingProtocols, status, body)
			status, _, _ = originRequest(t, "POST", hs.URL+"/nes/poll", tc.refused, pollHeader)
			assert.Equal(t, http.StatusForbidden, status, "the fallback follows the same rule")
			status, body, _ = originRequest(t, "POST", hs.URL+"/nes/poll", tc.allowed, pollHeader)
			assert.Equal(t, http.StatusOK, status, body)
		})
	}
}

// TestOriginsInvalidPanics: NewServer refuses an invalid entry at start-up with a message
// that names it and says why.
func TestOriginsInvalidPanics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ entry, why string }{
		{"https://app.test/login", "no path"},
		{"http://local*", "wildcard"},
		{"null", "null"},
	} {
		msg := func() (msg string) {
			defer func() { msg, _ = recover().(string) }()
			NewServer(nil, &Options{Origins: []string{"https://fine.test", tc.entry}, Heartbeat: &Heartbeat{Disabled: true}}).Close()
			return ""
		}()
		assert.Contains(t, msg, "herald: Options.Origins", tc.entry)
		assert.Contains(t, msg, `"`+tc.entry+`"`)
		assert.Contains(t, msg, tc.why)
	}
}

// TestTokenEndpointWithoutCredentials: as @hapi/nes, the endpoint answers 200
// {"status":"unauthenticated"} when Authenticate finds no credentials, and the status an
// Authenticate error chooses otherwise.
func TestTokenEndpointWithoutCredentials(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Type: "token", Password: strings.Repeat("p", 32),
		Authenticate: func(r *http.Request) (*Credentials, error) {
			switch r.URL.Query().Get("mode") {
			case "strict":
				return nil, NewError(http.StatusUnauthorized, "Missing credentials")
			case "user":
				return &Credentials{User: "ann"}, nil
			}
			return nil, nil
		}}})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	decode := func(body string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &m), body)
		return m
	}
	status, body, _ := originRequest(t, "GET", hs.URL+"/nes/auth", "", nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, map[string]any{"status": "unauthenticated"}, decode(body))
	status, body, _ = originRequest(t, "GET", hs.URL+"/nes/auth?mode=strict", "", nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "Missing credentials", decode(body)["message"])
	status, body, _ = originRequest(t, "GET", hs.URL+"/nes/auth?mode=user", "", nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "authenticated", decode(body)["status"])
	assert.NotEmpty(t, decode(body)["token"])
}
