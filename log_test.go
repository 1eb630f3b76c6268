package herald_test

import (
	"bytes"
	"context"
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

	"github.com/herald-go/herald"
)

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogsCarrySocketKeysAndNoSecrets runs every auth flow (direct headers, a token, a
// cookie, over WebSocket and the fallback's stream and POSTs, with good and forged
// credentials, a handler that panics, a refused origin) with a Logger at debug level, then
// checks that the lines about a socket carry its id, user, transport and remote address, and
// that no secret (the password, a token, a cookie, a ticket, an authorization header) appears
// in any line.
func TestLogsCarrySocketKeysAndNoSecrets(t *testing.T) {
	const (
		password     = "password-0123456789-0123456789-0123456789"
		directSecret = "Bearer direct-secret-7d1f"
		headerSecret = "x-header-secret-91ac"
	)
	var out lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	authenticate := func(r *http.Request) (*herald.Credentials, error) {
		if r.Header.Get("Authorization") == directSecret || r.Header.Get("X-Secret") == headerSecret {
			return &herald.Credentials{User: "john"}, nil
		}
		return nil, herald.NewError(http.StatusUnauthorized, "no")
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("on purpose") })
	var secrets []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, typ := range []string{"direct", "token", "cookie"} {
		srv := herald.NewServer(app, &herald.Options{Logger: logger, Heartbeat: &herald.Heartbeat{Disabled: true},
			Auth: &herald.AuthOptions{Type: typ, Password: password, Authenticate: authenticate, Required: true, CookieInsecure: true}})
		hs := httptest.NewServer(srv)
		wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/"

		var hello string
		var cookie string
		switch typ {
		case "direct":
			hello = `{"type":"hello","id":1,"version":"2","auth":{"headers":{"authorization":"` + directSecret + `"}}}`
		default:
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/nes/auth", nil)
			req.Header.Set("X-Secret", headerSecret)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var body map[string]string
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			res.Body.Close()
			require.Equal(t, "authenticated", body["status"], typ)
			if typ == "token" {
				require.NotEmpty(t, body["token"])
				secrets = append(secrets, body["token"])
				hello = `{"type":"hello","id":1,"version":"2","auth":"` + body["token"] + `"}`
			} else {
				require.Len(t, res.Cookies(), 1)
				cookie = res.Cookies()[0].Value
				secrets = append(secrets, cookie)
				hello = `{"type":"hello","id":1,"version":"2"}`
			}
		}

		// A socket that authenticates, then asks for a handler that panics: the server logs
		// the panic and closes the socket.
		c := dialRawWSHeader(t, ctx, wsURL, cookieHeader(cookie))
		c.send(t, hello)
		require.Contains(t, c.read(t), `"type":"hello"`, typ)
		c.send(t, `{"type":"request","id":2,"method":"GET","path":"/panic"}`)
		require.Contains(t, c.read(t), `"statusCode":500`)

		// Forged credentials of each kind are refused.
		forged := dialRawWSHeader(t, ctx, wsURL, cookieHeader("forged-"+cookie))
		forged.send(t, strings.NewReplacer(directSecret, "Bearer wrong", `"auth":"`, `"auth":"x`).Replace(hello))
		require.Contains(t, forged.read(t), `"statusCode":401`, typ)

		// The fallback: a stream opened with the cookie, its ticket used for a POST that is
		// refused (a bad body) and for a resume from another origin (refused).
		st := openStreamHeader(t, ctx, hs.URL+"/nes/sse", cookieHeader(cookie))
		open := st.expect(t, "herald-open")
		var info struct{ Ticket string }
		require.NoError(t, json.Unmarshal([]byte(open.data), &info))
		require.NotEmpty(t, info.Ticket)
		secrets = append(secrets, info.Ticket)
		st.close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/nes/send", strings.NewReader("not json"))
		req.Header.Set("Herald-Ticket", info.Ticket)
		req.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			req.Header.Set("Cookie", "nes="+cookie)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		assert.GreaterOrEqual(t, res.StatusCode, 400)
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/nes/sse", nil)
		req.Header.Set("Last-Event-ID", open.id)
		req.Header.Set("Origin", "http://elsewhere.example")
		res, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusForbidden, res.StatusCode)

		// The clients go first: a server closing a socket whose client never answers the
		// close frame would wait for its close timeout.
		_ = c.conn.Close()
		_ = forged.conn.Close()
		srv.Close()
		hs.Close()
	}

	logs := out.String()
	for _, secret := range append(secrets, password, directSecret, headerSecret, "direct-secret-7d1f") {
		assert.NotContains(t, logs, secret, "a secret was logged")
	}
	// Every line about a socket has the same keys.
	panics := 0
	for line := range strings.Lines(logs) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["msg"] != "herald: panic in a callback; closing the socket" {
			continue
		}
		panics++
		for _, key := range []string{"socket", "user", "transport", "remote"} {
			assert.NotEmpty(t, rec[key], "%s in %s", key, line)
		}
		assert.Equal(t, "john", rec["user"])
		assert.Equal(t, "websocket", rec["transport"])
	}
	assert.Equal(t, 3, panics, "one panic per auth type was logged")
}

func cookieHeader(value string) http.Header {
	if value == "" {
		return nil
	}
	return http.Header{"Cookie": {"nes=" + value}}
}
