package websocket_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/websocket"
)

// TestOriginsPatterns: each kind of entry of Options.Origins lets through what its doc says
// and nothing more; the request's own host always passes, and requests without Origin too.
func TestOriginsPatterns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		origins []string
		origin  string
		host    string // the request's Host; "" means "server.test"
		allowed bool
	}{
		{name: "no origin header", origin: "", allowed: true},
		{name: "own host", origin: "https://server.test", allowed: true},
		{name: "own host, other port", origin: "https://server.test:8443", allowed: false},
		{name: "own host with port", host: "server.test:8443", origin: "http://SERVER.test:8443", allowed: true},
		{name: "nothing listed", origin: "https://example.com", allowed: false},
		{name: "star", origins: []string{"*"}, origin: "http://anything.test:1234", allowed: true},
		{name: "exact", origins: []string{"https://example.com"}, origin: "https://example.com", allowed: true},
		{name: "exact, upper case", origins: []string{"https://Example.COM"}, origin: "https://example.com", allowed: true},
		{name: "exact, trailing slash", origins: []string{"https://example.com/"}, origin: "https://example.com", allowed: true},
		{name: "exact, default port written", origins: []string{"https://example.com:443"}, origin: "https://example.com", allowed: true},
		{name: "exact, other scheme", origins: []string{"https://example.com"}, origin: "http://example.com", allowed: false},
		{name: "exact, other port", origins: []string{"https://example.com"}, origin: "https://example.com:8443", allowed: false},
		{name: "exact, subdomain", origins: []string{"https://example.com"}, origin: "https://a.example.com", allowed: false},
		{name: "exact port", origins: []string{"http://localhost:8100"}, origin: "http://localhost:8100", allowed: true},
		{name: "exact port, another", origins: []string{"http://localhost:8100"}, origin: "http://localhost:8101", allowed: false},
		{name: "any port", origins: []string{"http://localhost:*"}, origin: "http://localhost:5173", allowed: true},
		{name: "any port, none", origins: []string{"http://localhost:*"}, origin: "http://localhost", allowed: true},
		{name: "any port, other scheme", origins: []string{"http://localhost:*"}, origin: "https://localhost:5173", allowed: false},
		{name: "host only, http", origins: []string{"example.com"}, origin: "http://example.com", allowed: true},
		{name: "host only, https", origins: []string{"example.com"}, origin: "https://example.com", allowed: true},
		{name: "host only, with a port", origins: []string{"example.com"}, origin: "https://example.com:8443", allowed: false},
		{name: "host and any port", origins: []string{"localhost:*"}, origin: "http://localhost:3000", allowed: true},
		{name: "subdomains", origins: []string{"*.example.com"}, origin: "https://a.b.example.com", allowed: true},
		{name: "subdomains, not the domain", origins: []string{"*.example.com"}, origin: "https://example.com", allowed: false},
		{name: "subdomains, not a suffix", origins: []string{"*.example.com"}, origin: "https://badexample.com", allowed: false},
		{name: "subdomains with scheme", origins: []string{"https://*.example.com"}, origin: "http://a.example.com", allowed: false},
		{name: "IPv6", origins: []string{"http://[::1]:*"}, origin: "http://[::1]:8080", allowed: true},
		{name: "second entry", origins: []string{"https://a.test", "https://b.test"}, origin: "https://b.test", allowed: true},
		{name: "null origin", origins: []string{"https://a.test"}, origin: "null", allowed: false},
		{name: "origin with a path", origins: []string{"https://a.test"}, origin: "https://a.test/x", allowed: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, websocket.ValidateOrigins(tc.origins))
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = "server.test"
			if tc.host != "" {
				r.Host = tc.host
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			assert.Equal(t, tc.allowed, websocket.OriginAllowed(r, &websocket.Options{Origins: tc.origins}))
		})
	}
}

// TestOriginsInvalid: ValidateOrigins refuses what users may type by mistake, naming the
// entry and the reason.
func TestOriginsInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct{ pattern, why string }{
		{"", "empty"},
		{" https://a.test", "spaces"},
		{"null", `"null" origin`},
		{"https://a.test/app", "no path"},
		{"https://user@a.test", "no path, query or user info"},
		{"https://a.test?x=1", "no path"},
		{"http://local*host", "wildcard"},
		{"*example.com", "wildcard"},
		{"https://*", "wildcard"},
		{"http://a.test:0", "port"},
		{"http://a.test:99999", "port"},
		{"http://a.test:8o", "port"},
		{"1http://a.test", "scheme"},
		{"https://", "no host"},
		{"https://a b", "host"},
		{"*.", "no host"},
	}
	for _, tc := range cases {
		err := websocket.ValidateOrigins([]string{"https://fine.test", tc.pattern})
		if assert.Error(t, err, "%q", tc.pattern) {
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", tc.pattern))
			assert.Contains(t, err.Error(), tc.why, "%q", tc.pattern)
		}
	}
}

// TestOriginsRefusal: a refused origin gets 403 with a body that names the origin and the
// option to change; an invalid pattern fails upgrades with 500 and Upgrade's error names it;
// the deprecated OriginPatterns still works.
func TestOriginsRefusal(t *testing.T) {
	t.Parallel()
	var opts *websocket.Options
	errs := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, opts)
		if err == nil {
			_ = c.CloseNow()
		}
		errs <- err
	}))
	defer srv.Close()
	upgrade := func(o *websocket.Options, origin string) (int, string, error) {
		opts = o
		req, err := http.NewRequest("GET", srv.URL, nil)
		require.NoError(t, err)
		req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Origin": {origin}}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body), <-errs
	}

	status, body, err := upgrade(&websocket.Options{Origins: []string{"https://app.test"}}, "https://evil.test")
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, `"https://evil.test"`)
	assert.Contains(t, body, "websocket.Options.Origins")
	var he *websocket.HTTPError
	assert.ErrorAs(t, err, &he)

	status, body, err = upgrade(&websocket.Options{Origins: []string{"https://app.test/login"}}, "https://evil.test")
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Contains(t, body, "Options.Origins")
	assert.ErrorContains(t, err, `"https://app.test/login"`)

	status, _, err = upgrade(&websocket.Options{OriginPatterns: []string{"*.app.test"}}, "https://www.app.test")
	assert.Equal(t, http.StatusSwitchingProtocols, status)
	assert.NoError(t, err)
}

// Options.Origins takes origins as users write them; ValidateOrigins says what is wrong with
// an entry before any request needs it.
func ExampleValidateOrigins() {
	for _, origins := range [][]string{
		{"https://app.example.com", "http://localhost:*", "*.example.com", "example.org:8443"},
		{"https://example.com/app"},
		{"http://*.local*"},
	} {
		fmt.Println(websocket.ValidateOrigins(origins))
	}
	// Output:
	// <nil>
	// websocket: invalid origin pattern "https://example.com/app": an origin is a scheme, a host and a port, with no path, query or user info (such as "https://example.com:8443")
	// websocket: invalid origin pattern "http://*.local*": a wildcard may only be a leading "*." (every subdomain) or the port ("localhost:*")
}
