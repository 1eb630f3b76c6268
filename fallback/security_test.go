package fallback_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// altered returns ticket with one character changed, at every position, and at the last one
// (where base64 may carry unused bits) to every other character.
func altered(ticket string) []string {
	var out []string
	for i := range ticket {
		j := (strings.IndexByte(base64URL, ticket[i]) + 1 + i) % len(base64URL)
		out = append(out, ticket[:i]+base64URL[j:j+1]+ticket[i+1:])
	}
	last := len(ticket) - 1
	for _, c := range []byte(base64URL) {
		if c != ticket[last] {
			out = append(out, ticket[:last]+string(c))
		}
	}
	return out
}

// TestTicketForged posts with tickets the server never gave: guessed at random, or altered by
// one character: 404, and nothing reaches the session; a stream resumed with one gets a new
// session, never the one the ticket was made from.
func TestTicketForged(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	h := newHarness(t, "HTTP/1.1", nil, collect(got))
	hc := h.client()
	ticket := openPoll(t, hc, h.base).Ticket

	var forged []string
	for range 20 {
		b := make([]byte, base64.RawURLEncoding.DecodedLen(len(ticket)))
		_, _ = rand.Read(b)
		b[0] = 1 // the version, as a guesser would
		forged = append(forged, base64.RawURLEncoding.EncodeToString(b))
	}
	forged = append(forged, "", "x", strings.Repeat("A", 500), ticket+"A", ticket[1:], ticket+"==")
	forged = append(forged, altered(ticket)...)
	for _, f := range forged {
		if f == "" {
			continue // no ticket: 400 (TestLimits)
		}
		a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "forged"), "Herald-Ticket", f)
		require.Equal(t, http.StatusNotFound, a.status, "ticket %q: %s", f, a.body)
		a = post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", f)
		require.Equal(t, http.StatusNotFound, a.status, "ticket %q: %s", f, a.body)
	}
	for _, f := range forged[len(forged)-8:] {
		st := openStream(t, hc, h.base, "Last-Event-ID", f+".0")
		st.expect(fallback.EventReset)
		o := parseOpen(t, st.expect(fallback.EventOpen).Data)
		require.NotEqual(t, ticket, o.Ticket)
		require.False(t, o.Resumed)
		st.close()
	}
	// The real ticket still works, and nothing forged got through.
	a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "real"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.Equal(t, []string{"real"}, received(t, got, 1))
}

// TestTicketOtherNode takes a ticket to another node that shares the key: 404.
func TestTicketOtherNode(t *testing.T) {
	t.Parallel()
	key := []byte("a key both nodes share")
	a := newHarness(t, "HTTP/1.1", &fallback.Options{Key: key, Node: "a"}, idle)
	b := newHarness(t, "HTTP/1.1", &fallback.Options{Key: key, Node: "b"}, idle)
	ticket := openPoll(t, a.client(), a.base).Ticket
	ans := post(t, b.client(), b.base, fallback.EndpointSend, batchBody(1, "x"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNotFound, ans.status, "%s", ans.body)
	require.Contains(t, string(ans.body), "another node")
	ans = post(t, a.client(), a.base, fallback.EndpointSend, batchBody(1, "x"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, ans.status, "%s", ans.body)
}

// TestBindCookie uses a session's ticket with another value of the binding cookie, or none: 403
// for POSTs, polls and resumed streams; the session's own cookie is served.
func TestBindCookie(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	h := newHarness(t, "HTTP/1.1", &fallback.Options{BindCookie: "sid"}, collect(got))
	hc := h.client()
	for _, open := range []string{"sse", "poll"} {
		var ticket string
		if open == "sse" {
			st := openStream(t, hc, h.base, "Cookie", "sid=A; other=1")
			ticket = parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
			st.close()
		} else {
			ticket = openPoll(t, hc, h.base, "Cookie", "sid=A").Ticket
		}
		for _, cookie := range []string{"sid=B", "", "other=1", "sid=a", "sid=A2"} {
			a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "stolen"), "Herald-Ticket", ticket, "Cookie", cookie)
			require.Equal(t, http.StatusForbidden, a.status, "%s, cookie %q: %s", open, cookie, a.body)
			a = post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket, "Cookie", cookie)
			require.Equal(t, http.StatusForbidden, a.status, "%s, cookie %q: %s", open, cookie, a.body)
			_, status := tryStream(t, hc, h.base, "Last-Event-ID", ticket+".0", "Cookie", cookie)
			require.Equal(t, http.StatusForbidden, status, "%s, cookie %q", open, cookie)
		}
		a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "mine "+open), "Herald-Ticket", ticket, "Cookie", "x=1; sid=A")
		require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
		require.Equal(t, []string{"mine " + open}, received(t, got, 1))
		st := openStream(t, hc, h.base, "Last-Event-ID", ticket+".0", "Cookie", "sid=A")
		o := parseOpen(t, st.expect(fallback.EventOpen).Data)
		require.Equal(t, ticket, o.Ticket)
		require.True(t, o.Resumed)
		st.close()
	}
}

// TestCrossOrigin sends what another site could: requests from an origin the server does not
// allow, POSTs a browser marks cross-site, bodies a form can send, and the session's ticket
// from another allowed origin: all refused, and nothing reaches the session.
func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	allowed := map[string]bool{"https://a.example": true, "https://b.example": true}
	got := make(chan string, 10)
	h := newHarness(t, "HTTP/1.1", &fallback.Options{CheckOrigin: func(r *http.Request) bool {
		return allowed[r.Header.Get("Origin")]
	}}, collect(got))
	hc := h.client()
	ticket := openPoll(t, hc, h.base, "Origin", "https://a.example").Ticket
	body := batchBody(1, "forged")

	type req struct {
		name     string
		endpoint string
		body     string
		hdr      []string
		status   int
	}
	cases := []req{
		{"evil origin, send", fallback.EndpointSend, body, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"evil origin, poll", fallback.EndpointPoll, `{"last":0}`, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"evil origin, new poll", fallback.EndpointPoll, `{}`, []string{"Origin", "https://evil.example", "Herald-Ticket", ""}, http.StatusForbidden},
		{"null origin", fallback.EndpointSend, body, []string{"Origin", "null"}, http.StatusForbidden},
		{"other allowed origin, send", fallback.EndpointSend, body, []string{"Origin", "https://b.example"}, http.StatusForbidden},
		{"other allowed origin, poll", fallback.EndpointPoll, `{"last":0}`, []string{"Origin", "https://b.example"}, http.StatusForbidden},
		{"cross-site, send", fallback.EndpointSend, body, []string{"Origin", "", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"cross-site, poll", fallback.EndpointPoll, `{"last":0}`, []string{"Origin", "", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"cross-site, new poll", fallback.EndpointPoll, `{}`, []string{"Origin", "", "Sec-Fetch-Site", "cross-site", "Herald-Ticket", ""}, http.StatusForbidden},
		{"same-site, send", fallback.EndpointSend, body, []string{"Origin", "", "Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
	}
	for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", "text/plain; charset=utf-8", "", "application/json-patch+json", "application/jsonx"} {
		cases = append(cases,
			req{"send as " + ct, fallback.EndpointSend, body, []string{"Content-Type", ct}, http.StatusUnsupportedMediaType},
			req{"poll as " + ct, fallback.EndpointPoll, `{"last":0}`, []string{"Content-Type", ct}, http.StatusUnsupportedMediaType},
			req{"new poll as " + ct, fallback.EndpointPoll, `{}`, []string{"Content-Type", ct, "Herald-Ticket", ""}, http.StatusUnsupportedMediaType},
		)
	}
	for _, tc := range cases {
		hdr := append([]string{"Origin", "https://a.example", "Herald-Ticket", ticket}, tc.hdr...)
		a := post(t, hc, h.base, tc.endpoint, tc.body, hdr...)
		require.Equal(t, tc.status, a.status, "%s: %s", tc.name, a.body)
	}
	// Streams: a resume from another origin, allowed or not. (A request without Origin, as a
	// browser's same-origin EventSource sends, is the session's: a present origin is checked.)
	for _, origin := range []string{"https://b.example", "https://evil.example", "null"} {
		_, status := tryStream(t, hc, h.base, "Last-Event-ID", ticket+".0", "Origin", origin)
		require.Equal(t, http.StatusForbidden, status, "resume from %q", origin)
	}
	_, status := tryStream(t, hc, h.base, "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, status, "a new stream from another origin")

	// The session's own origin gets through, and only its messages were received.
	a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "mine"), "Origin", "https://a.example", "Herald-Ticket", ticket,
		"Content-Type", "application/json; charset=utf-8")
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.Equal(t, []string{"mine"}, received(t, got, 1))
	st := openStream(t, hc, h.base, "Last-Event-ID", ticket+".0", "Origin", "https://a.example")
	require.True(t, parseOpen(t, st.expect(fallback.EventOpen).Data).Resumed)
}
