package herald

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
)

// TestHelloTimeoutWhateverTheAuth: a raw socket that sends nothing is closed by
// Options.HelloTimeout with every auth setting (none, each type, required, an auth timeout
// turned off), well before the first heartbeat ping (the heartbeat stays at its default
// 15 s, so a close within the test's bound can only be the hello timeout's). A socket that says
// hello in time is kept past the timeout.
func TestHelloTimeoutWhateverTheAuth(t *testing.T) {
	t.Parallel()
	password := strings.Repeat("p", 32)
	none := func(r *http.Request) (*Credentials, error) {
		if r.Header.Get("Authorization") != "" {
			return &Credentials{User: "ann"}, nil
		}
		return nil, nil
	}
	cases := []struct {
		name  string
		auth  *AuthOptions
		hello any // the polite socket's auth
	}{
		{name: "no auth"},
		{name: "direct", auth: &AuthOptions{Authenticate: none}},
		{name: "direct, required", auth: &AuthOptions{Authenticate: none, Required: true},
			hello: map[string]any{"headers": map[string]string{"authorization": "Basic YW5uOg=="}}},
		{name: "token", auth: &AuthOptions{Type: "token", Password: password, Authenticate: none}},
		{name: "cookie", auth: &AuthOptions{Type: "cookie", Password: password, Authenticate: none}},
		{name: "auth timeout off", auth: &AuthOptions{Authenticate: none, Timeout: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := NewServer(nil, &Options{HelloTimeout: 200 * time.Millisecond, Auth: tc.auth})
			url := newTestServer(t, srv)
			silent := dialRaw(t, url, nil)
			polite := dialRaw(t, url, nil)
			assert.Equal(t, "hello", polite.hello(tc.hello)["type"])
			start := time.Now()
			assert.Equal(t, ws.StatusNoStatusRcvd, silent.closed(5*time.Second), "no hello within HelloTimeout")
			assert.Less(t, time.Since(start), 5*time.Second)

			time.Sleep(250 * time.Millisecond) // past the hello timeout of the polite socket
			polite.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/nope"})
			assert.EqualValues(t, 404, polite.next(5 * time.Second)["statusCode"], "a socket that said hello is kept")
		})
	}
}

// TestHelloTimeoutDefault: with no HelloTimeout and no auth, a silent socket is closed after
// the documented 5 s, not at the heartbeat (15 s + 5 s). Only the default needs this long
// wait; it runs beside the other tests.
func TestHelloTimeoutDefault(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, nil)
	silent := dialRaw(t, newTestServer(t, srv), nil)
	start := time.Now()
	assert.Equal(t, ws.StatusNoStatusRcvd, silent.closed(12*time.Second))
	assert.GreaterOrEqual(t, time.Since(start), 4*time.Second, "closed by the 5 s default, not sooner")
}
