package websocket

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHandshakeRequestRoundTrip checks that what a connection keeps of its request comes back
// whole, with header values holding any byte, and that each copy is the caller's own.
func TestHandshakeRequestRoundTrip(t *testing.T) {
	u, err := url.Parse("/chat/r%2Fx?room=1&b=%00")
	require.NoError(t, err)
	r := &http.Request{
		Method: "GET", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Host: "example.com:8080", RemoteAddr: "192.0.2.1:4000", RequestURI: "/chat/r%2Fx?room=1&b=%00",
		Header: http.Header{
			"Origin":                              {"https://example.com"},
			"Cookie":                              {"a=1", "b=2"},
			"X-Binary":                            {"\x00\xff\n\r:" + string(make([]byte, 300))},
			"Empty":                               {""},
			"X-Long-" + string(make([]byte, 200)): {"v"},
		},
	}
	h := snapshotRequest(r)
	assert.Nil(t, h.url, "a URL that is just the parsed request URI is parsed again when asked for")
	got := h.request()
	assert.Equal(t, r.Header, got.Header)
	assert.Equal(t, r.URL.String(), got.URL.String())
	assert.Equal(t, "/chat/r%2Fx", got.URL.EscapedPath())
	assert.Equal(t, r.Host, got.Host)
	assert.Equal(t, r.RemoteAddr, got.RemoteAddr)
	assert.Equal(t, r.RequestURI, got.RequestURI)
	assert.Equal(t, 1, got.ProtoMajor)
	assert.Equal(t, 1, got.ProtoMinor)
	assert.Equal(t, http.NoBody, got.Body)

	got.Header.Set("Origin", "changed")
	got.URL.Path = "/changed"
	again := h.request()
	assert.Equal(t, "https://example.com", again.Header.Get("Origin"), "a copy's header is its own")
	assert.Equal(t, "/chat/r/x", again.URL.Path, "a copy's URL is its own")
	assert.Equal(t, "/chat/r/x", r.URL.Path, "the original URL is never changed")

	// A URL a middleware changed (as http.StripPrefix does) is kept as it was given.
	stripped := *r
	su := *r.URL
	su.Path, su.RawPath = "/x", ""
	stripped.URL = &su
	h = snapshotRequest(&stripped)
	assert.Equal(t, "/x", h.request().URL.Path)
	assert.Equal(t, r.RequestURI, h.request().RequestURI)
}
