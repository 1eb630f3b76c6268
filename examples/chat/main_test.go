package main

// The chat program, built once and run as a process, exercised with herald's Go nes client over
// each transport (websocket, sse, poll) and with plain HTTP; browser_test.go drives its page in
// Chromium. The Go-level tests need nothing but Go.
//
//	go test -race -count=1 ./examples/chat/

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// waitFor bounds each wait for the program: its first line, its exit.
const waitFor = 20 * time.Second

// transports are those the tests run over, each forced in turn.
var transports = []string{client.TransportWebSocket, client.TransportSSE, client.TransportPoll}

// TestMain fails the tests when a goroutine outlives them: the tests' clients must leave
// nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// chatProc is a running chat program.
type chatProc struct {
	*testpeers.Program
	addr string // host:port
	URL  string // http://addr
}

// start runs the program on a free port with args and waits for its first line, "listening
// on http://ADDR". The test's end stops it (see stop).
func start(t *testing.T, args ...string) *chatProc {
	t.Helper()
	return startAt(t, "127.0.0.1:0", args...)
}

// startAt is start on addr.
func startAt(t *testing.T, addr string, args ...string) *chatProc {
	t.Helper()
	p := &chatProc{Program: testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/chat"), testpeers.ProgramOptions{
		Name: "examples/chat",
		Args: append([]string{"-addr", addr}, args...),
		Wait: waitFor,
	})}
	t.Cleanup(func() { p.stop(t) })
	p.addr = p.Listening(t)
	p.URL = "http://" + p.addr
	return p
}

// stop interrupts the program and returns its exit code once it has exited; a program that
// outlives waitFor is killed and fails the test. Stopping it again only returns the code.
func (p *chatProc) stop(t *testing.T) int {
	t.Helper()
	return p.Stop(t, os.Interrupt, waitFor)
}

// httpClient talks plain HTTP to the program, directly whatever the environment's proxies, with
// jar's cookies (none when jar is nil).
func httpClient(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
}

// connect connects a nes client over transport alone, with jar's cookies. The test's end
// closes it.
func (p *chatProc) connect(t *testing.T, transport string, jar http.CookieJar) *client.Client {
	t.Helper()
	c, err := client.New("ws://"+p.addr, &client.Options{
		Transports: []string{transport},
		Jar:        jar,
		Dial:       &websocket.DialOptions{Proxy: websocket.NoProxy},
		Timeout:    10 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx), "connect over %s", transport)
	require.Equal(t, transport, c.Transport())
	return c
}

// signIn signs name in through the nes auth endpoint, as the page does, and connects a client
// with the cookie over transport.
func (p *chatProc) signIn(t *testing.T, name, transport string) *client.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := httpClient(jar)
	defer hc.CloseIdleConnections()
	token, err := client.FetchToken(ctx, p.URL+"/nes/auth?name="+url.QueryEscape(name), nil, hc)
	require.NoError(t, err, "sign in as %q", name)
	require.Empty(t, token, "cookie auth hands out no token")
	return p.connect(t, transport, jar)
}

// update is any publication of the chat: a message, a presence change or the lobby.
type update struct {
	Type    string    `json:"type"`
	ID      int64     `json:"id"`
	Room    string    `json:"room"`
	User    string    `json:"user"`
	Text    string    `json:"text"`
	Time    time.Time `json:"time"`
	Seq     int64     `json:"seq"`
	Event   string    `json:"event"`
	Members []string  `json:"members"`
	Rooms   []struct {
		Name    string `json:"name"`
		Members int    `json:"members"`
	} `json:"rooms"`
}

// next decodes the next update of a subscription.
func next(t *testing.T, r *heraldtest.Recorder[client.Update]) update {
	t.Helper()
	u := r.Next(t)
	require.False(t, u.Revoked, "revoked: %v", u.Err)
	var v update
	require.NoError(t, json.Unmarshal(u.Message, &v), "%s", u.Message)
	return v
}

// post posts payload to room's messages over nes.
func post(c *client.Client, room string, payload any) (*client.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Do(ctx, &client.Request{Method: http.MethodPost, Path: "/rooms/" + room + "/messages", Payload: payload})
}

// get GETs path over nes and decodes the reply into v.
func get(t *testing.T, c *client.Client, path string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Request(ctx, path)
	require.NoError(t, err, "GET %s", path)
	require.NoError(t, json.Unmarshal(res.Payload, v), "GET %s: %s", path, res.Payload)
}

// members is GET /rooms/{room}/members's answer.
type members struct {
	Room    string   `json:"room"`
	Seq     int64    `json:"seq"`
	Members []string `json:"members"`
}

// serverError asserts that err is the server's refusal with status and a message holding msg.
func serverError(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.KindServer, e.Kind, "%v", err)
	assert.Equal(t, status, e.StatusCode, "%v", err)
	assert.Contains(t, e.Message, msg)
}

func TestChat(t *testing.T) {
	t.Parallel()
	p := start(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			room := "lounge-" + transport
			alice := p.signIn(t, "Alice", transport)
			bob := p.signIn(t, "Bob", transport)
			var me struct{ User string }
			get(t, alice, "/me", &me)
			assert.Equal(t, "Alice", me.User)

			// Alice creates the room by subscribing to it; Bob's joining reaches her.
			aliceFeed := heraldtest.Subscribe(t, alice, "/rooms/"+room)
			var m members
			get(t, alice, "/rooms/"+room+"/members", &m)
			assert.Equal(t, members{Room: room, Seq: m.Seq, Members: []string{"Alice"}}, m)
			bobFeed := heraldtest.Subscribe(t, bob, "/rooms/"+room)
			join := next(t, aliceFeed)
			assert.Equal(t, update{Type: "presence", Room: room, Seq: join.Seq, Event: "join", User: "Bob", Members: []string{"Alice", "Bob"}}, join)
			assert.Greater(t, join.Seq, m.Seq)
			get(t, bob, "/rooms/"+room+"/members", &m)
			assert.Equal(t, members{Room: room, Seq: join.Seq, Members: []string{"Alice", "Bob"}}, m, "the snapshot is the last change")

			// Bob writes: both see it, stamped with his name and the time, trimmed, CRLF made LF.
			before := time.Now()
			res, err := post(bob, room, map[string]string{"text": "  Hello, Alice — ünïcödé ✓\r\nsecond line  "})
			require.NoError(t, err)
			after := time.Now()
			assert.Equal(t, http.StatusCreated, res.StatusCode)
			var sent update
			require.NoError(t, json.Unmarshal(res.Payload, &sent), "%s", res.Payload)
			assert.Equal(t, update{Type: "message", ID: sent.ID, Room: room, User: "Bob", Text: "Hello, Alice — ünïcödé ✓\nsecond line", Time: sent.Time}, sent)
			assert.Greater(t, sent.ID, join.Seq, "ids and seqs come from one counter")
			assert.WithinRange(t, sent.Time, before.Add(-time.Millisecond), after)
			assert.Equal(t, sent, next(t, aliceFeed))
			assert.Equal(t, sent, next(t, bobFeed))

			// Alice answers; the history holds both, in order.
			res, err = post(alice, room, map[string]string{"text": "<b>Hi Bob</b> & welcome"})
			require.NoError(t, err)
			var answer update
			require.NoError(t, json.Unmarshal(res.Payload, &answer))
			assert.Equal(t, "Alice", answer.User)
			assert.Equal(t, "<b>Hi Bob</b> & welcome", answer.Text, "kept as typed: the page escapes")
			assert.Equal(t, answer, next(t, bobFeed))
			assert.Equal(t, answer, next(t, aliceFeed))
			var history struct {
				Room     string   `json:"room"`
				Messages []update `json:"messages"`
			}
			get(t, bob, "/rooms/"+room+"/messages", &history)
			assert.Equal(t, []update{sent, answer}, history.Messages)

			// Bob leaves: Alice sees it, and nothing more comes to Bob.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, bob.Unsubscribe(ctx, "/rooms/"+room))
			leave := next(t, aliceFeed)
			assert.Equal(t, update{Type: "presence", Room: room, Seq: leave.Seq, Event: "leave", User: "Bob", Members: []string{"Alice"}}, leave)
			assert.Greater(t, leave.Seq, answer.ID)
			_, err = post(alice, room, map[string]string{"text": "bye"})
			require.NoError(t, err)
			assert.Equal(t, "bye", next(t, aliceFeed).Text)
			bobFeed.None(t, 200*time.Millisecond)
		})
	}
}

// TestPresence: a user is in a room once, however many connections they have there, and leaves
// when the last goes, whether it unsubscribes or disconnects.
func TestPresence(t *testing.T) {
	t.Parallel()
	p := start(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			room := "presence-" + transport
			alice := p.signIn(t, "Alice", transport)
			feed := heraldtest.Subscribe(t, alice, "/rooms/"+room)
			bob1 := p.signIn(t, "Bob", transport)
			bob2 := p.signIn(t, "Bob", client.TransportWebSocket)
			heraldtest.Subscribe(t, bob1, "/rooms/"+room)
			heraldtest.Subscribe(t, bob2, "/rooms/"+room)
			join := next(t, feed)
			assert.Equal(t, []string{"join", "Bob"}, []string{join.Event, join.User})
			assert.Equal(t, []string{"Alice", "Bob"}, join.Members)
			feed.None(t, 200*time.Millisecond) // Bob's second connection is no second Bob

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, bob2.Unsubscribe(ctx, "/rooms/"+room))
			feed.None(t, 200*time.Millisecond) // one of Bob's connections is still here
			require.NoError(t, bob1.Close())   // the last one goes with its connection
			leave := next(t, feed)
			assert.Equal(t, []string{"leave", "Bob"}, []string{leave.Event, leave.User})
			assert.Equal(t, []string{"Alice"}, leave.Members)
			assert.Greater(t, leave.Seq, join.Seq)
		})
	}
}

// TestLobby: /rooms lists the rooms and their head counts as they change; a room nobody is in
// and nobody wrote in goes away.
func TestLobby(t *testing.T) {
	t.Parallel()
	p := start(t, "-rooms", "main,side")
	alice := p.signIn(t, "Alice", client.TransportWebSocket)
	bob := p.signIn(t, "Bob", client.TransportSSE)
	type entry = struct {
		Name    string `json:"name"`
		Members int    `json:"members"`
	}
	var l update
	get(t, alice, "/rooms", &l)
	assert.Equal(t, []entry{{"main", 0}, {"side", 0}}, l.Rooms)
	lobby := heraldtest.Subscribe(t, alice, "/rooms")

	heraldtest.Subscribe(t, bob, "/rooms/zebra")
	u := next(t, lobby)
	assert.Equal(t, "rooms", u.Type)
	assert.Greater(t, u.Seq, l.Seq)
	assert.Equal(t, []entry{{"main", 0}, {"side", 0}, {"zebra", 1}}, u.Rooms, "the server's rooms first, then the others by name")
	heraldtest.Subscribe(t, bob, "/rooms/side")
	assert.Equal(t, []entry{{"main", 0}, {"side", 1}, {"zebra", 1}}, next(t, lobby).Rooms)
	heraldtest.Subscribe(t, alice, "/rooms/alpha")
	_, err := post(alice, "alpha", map[string]string{"text": "a room with history stays"})
	require.NoError(t, err)
	assert.Equal(t, []entry{{"main", 0}, {"side", 1}, {"alpha", 1}, {"zebra", 1}}, next(t, lobby).Rooms)

	require.NoError(t, bob.Close())
	u = next(t, lobby)
	for u.Rooms[1].Members != 0 || len(u.Rooms) != 3 { // one update per room Bob left
		u = next(t, lobby)
	}
	assert.Equal(t, []entry{{"main", 0}, {"side", 0}, {"alpha", 1}}, u.Rooms, "zebra, empty and silent, is gone")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, alice.Unsubscribe(ctx, "/rooms/alpha"))
	assert.Equal(t, []entry{{"main", 0}, {"side", 0}, {"alpha", 0}}, next(t, lobby).Rooms)
	_, err = post(alice, "zebra", map[string]string{"text": "gone"})
	serverError(t, err, http.StatusNotFound, "No room zebra")
}

// TestValidation: what the chat refuses, over nes, and what it takes at the limits.
func TestValidation(t *testing.T) {
	t.Parallel()
	p := start(t, "-max-rooms", "4")
	alice := p.signIn(t, "Alice", client.TransportWebSocket)
	heraldtest.Subscribe(t, alice, "/rooms/general")

	for _, tc := range []struct {
		name    string
		room    string
		payload any
		status  int
		message string // in the error, or the text published
	}{
		{name: "empty", payload: map[string]string{"text": ""}, status: 400, message: "A message needs some text"},
		{name: "blank", payload: map[string]string{"text": " \n\t \r\n "}, status: 400, message: "A message needs some text"},
		{name: "no text", payload: map[string]string{"message": "hi"}, status: 400, message: `Expected {"text": "..."}`},
		{name: "text not a string", payload: map[string]int{"text": 5}, status: 400, message: `Expected {"text": "..."}`},
		{name: "JSON null", payload: json.RawMessage(`null`), status: 415, message: "as application/json"},
		{name: "not JSON", payload: "hello", status: 415, message: "as application/json"},
		{name: "1001 characters", payload: map[string]string{"text": strings.Repeat("é", 1001)}, status: 400, message: "A message holds at most 1000 characters; this one has 1001"},
		{name: "1000 characters", payload: map[string]string{"text": strings.Repeat("é", 1000)}, status: 201, message: strings.Repeat("é", 1000)},
		{name: "past 8 KiB", payload: map[string]string{"text": strings.Repeat("a", 9000)}, status: 413, message: "at most 8192 bytes"},
		{name: "NUL", payload: map[string]string{"text": "a\x00b"}, status: 400, message: "control characters (U+0000)"},
		{name: "bell", payload: map[string]string{"text": "a\ab"}, status: 400, message: "control characters (U+0007)"},
		{name: "lone CR", payload: map[string]string{"text": "a\rb"}, status: 400, message: "control characters (U+000D)"},
		{name: "tab and newline", payload: map[string]string{"text": "a\tb\nc"}, status: 201, message: "a\tb\nc"},
		{name: "no such room", room: "nowhere", payload: map[string]string{"text": "hi"}, status: 404, message: "No room nowhere: subscribe to /rooms/nowhere to create it"},
		{name: "no room name", room: "Not-A-Room!", payload: map[string]string{"text": "hi"}, status: 404, message: "No room Not-A-Room!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := tc.room
			if room == "" {
				room = "general"
			}
			res, err := post(alice, room, tc.payload)
			if tc.status >= 400 {
				serverError(t, err, tc.status, tc.message)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.status, res.StatusCode)
			var m update
			require.NoError(t, json.Unmarshal(res.Payload, &m))
			assert.Equal(t, tc.message, m.Text)
		})
	}

	t.Run("rooms", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, path := range []string{"/rooms/Upper", "/rooms/-dash", "/rooms/" + strings.Repeat("a", 33), "/rooms/a.b"} {
			_, err := alice.Subscribe(ctx, path, func(client.Update) {})
			serverError(t, err, http.StatusNotFound, "room names are 1 to 32 of a-z, 0-9, - and _")
		}
		heraldtest.Subscribe(t, alice, "/rooms/"+strings.Repeat("a", 32))
		// general, random, herald and that one: -max-rooms 4.
		_, err := alice.Subscribe(ctx, "/rooms/one-too-many", func(client.Update) {})
		serverError(t, err, http.StatusForbidden, "No room for #one-too-many: this server keeps at most 4 rooms (its -max-rooms)")
	})

	t.Run("names", func(t *testing.T) {
		hc := httpClient(nil)
		defer hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, tc := range []struct {
			name, want string
			status     int
		}{
			{name: "", status: 400, want: "A name has 1 to 24 characters"},
			{name: "   ", status: 400, want: "A name has 1 to 24 characters"},
			{name: strings.Repeat("n", 25), status: 400, want: "A name has 1 to 24 characters"},
			{name: "<b>", status: 400, want: "A name holds letters, digits, spaces and - _ . ' only"},
			{name: "nul\x00", status: 400, want: "A name holds letters"},
			{name: "tab\tand  spaces", want: "tab and spaces"},
			{name: strings.Repeat("ñ", 24), want: strings.Repeat("ñ", 24)},
			{name: "  Zoë   O'Brien-Smith_2. ", want: "Zoë O'Brien-Smith_2."},
			{name: "李小龍", want: "李小龍"},
		} {
			_, err := client.FetchToken(ctx, p.URL+"/nes/auth?name="+url.QueryEscape(tc.name), nil, hc)
			if tc.status != 0 {
				serverError(t, err, tc.status, tc.want)
				continue
			}
			require.NoError(t, err, "%q", tc.name)
			c := p.signIn(t, tc.name, client.TransportWebSocket)
			var me struct{ User string }
			get(t, c, "/me", &me)
			assert.Equal(t, tc.want, me.User)
		}
		// Without a name the endpoint says so, and signs nobody in.
		_, err := client.FetchToken(ctx, p.URL+"/nes/auth", nil, hc)
		assert.ErrorContains(t, err, `answered status "unauthenticated"`)
	})

	t.Run("unauthenticated", func(t *testing.T) {
		for _, transport := range transports {
			anon := p.connect(t, transport, nil)
			_, err := post(anon, "general", map[string]string{"text": "hi"})
			serverError(t, err, http.StatusUnauthorized, "Missing authentication")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = anon.Request(ctx, "/me")
			serverError(t, err, http.StatusUnauthorized, "Missing authentication")
			_, err = anon.Subscribe(ctx, "/rooms/general", func(client.Update) {})
			serverError(t, err, http.StatusUnauthorized, "")
			_, err = anon.Subscribe(ctx, "/rooms", func(client.Update) {})
			serverError(t, err, http.StatusUnauthorized, "")
			cancel()
		}
	})
}

// TestHistory: a room keeps its last -history messages for those who join later.
func TestHistory(t *testing.T) {
	t.Parallel()
	p := start(t, "-history", "3")
	alice := p.signIn(t, "Alice", client.TransportWebSocket)
	feed := heraldtest.Subscribe(t, alice, "/rooms/general")
	var sent []update
	for i := range 5 {
		_, err := post(alice, "general", map[string]string{"text": fmt.Sprint("message ", i)})
		require.NoError(t, err)
		sent = append(sent, next(t, feed))
	}
	bob := p.signIn(t, "Bob", client.TransportPoll)
	heraldtest.Subscribe(t, bob, "/rooms/general")
	var history struct {
		Messages []update `json:"messages"`
	}
	get(t, bob, "/rooms/general/messages", &history)
	assert.Equal(t, sent[2:], history.Messages, "the last three, oldest first")
	for i := 1; i < len(sent); i++ {
		assert.Greater(t, sent[i].ID, sent[i-1].ID)
	}

	none := start(t, "-history", "0")
	carol := none.signIn(t, "Carol", client.TransportWebSocket)
	_, err := post(carol, "general", map[string]string{"text": "not kept"})
	require.NoError(t, err)
	get(t, carol, "/rooms/general/messages", &history)
	assert.Equal(t, []update{}, history.Messages)
}

// TestHTTP: the page, the browser modules, and the routes over plain HTTP.
func TestHTTP(t *testing.T) {
	t.Parallel()
	p := start(t)
	hc := httpClient(nil)
	defer hc.CloseIdleConnections()
	do := func(method, path string, header http.Header, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := hc.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, string(b)
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}

	res, body := do("GET", "/", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Contains(t, body, `<script type="module" src="/chat.js">`)
	res, body = do("GET", "/chat.js", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, body, `from '/herald/client.js'`)
	assert.NotContains(t, body, "innerHTML", "people's text goes through textContent")
	for _, path := range []string{"/herald/client.js", "/herald/herald-socket.js"} {
		res, _ = do("GET", path, nil, "")
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"), path)
	}
	res, _ = do("GET", "/chat.css", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = do("GET", "/nope", nil, "")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)

	// The name in the query stands for the cookie over plain HTTP, as curl would post.
	listener := p.signIn(t, "Listener", client.TransportWebSocket)
	feed := heraldtest.Subscribe(t, listener, "/rooms/general")
	res, body = do("POST", "/rooms/general/messages?name=curl", jsonHeader, `{"text": "hi from curl"}`)
	assert.Equal(t, http.StatusCreated, res.StatusCode, body)
	var m update
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	assert.Equal(t, "curl", m.User)
	assert.Equal(t, m, next(t, feed))
	res, body = do("GET", "/rooms/general/members?name=curl", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `"members":["Listener"]`)

	for _, tc := range []struct {
		name, method, path string
		header             http.Header
		body               string
		status             int
		want               string
	}{
		{name: "no name", method: "POST", path: "/rooms/general/messages", header: jsonHeader, body: `{"text":"x"}`, status: 401, want: "Missing authentication"},
		{name: "bad name", method: "POST", path: "/rooms/general/messages?name=%3Cb%3E", header: jsonHeader, body: `{"text":"x"}`, status: 401, want: "A name holds letters"},
		{name: "form post", method: "POST", path: "/rooms/general/messages?name=curl", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: "text=x", status: 415, want: "as application/json"},
		{name: "cross-site post", method: "POST", path: "/rooms/general/messages?name=curl", header: http.Header{"Content-Type": {"application/json"}, "Origin": {"https://evil.example"}}, body: `{"text":"x"}`, status: 403},
		{name: "cross-site fetch metadata", method: "POST", path: "/rooms/general/messages?name=curl", header: http.Header{"Content-Type": {"application/json"}, "Sec-Fetch-Site": {"cross-site"}}, body: `{"text":"x"}`, status: 403},
		{name: "cross-site sign-in", method: "GET", path: "/nes/auth?name=mallory", header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, status: 403, want: "Sign in from this site's own page"},
		{name: "cross-site sign-out", method: "POST", path: "/signout", header: http.Header{"Origin": {"https://evil.example"}}, status: 403},
		{name: "GET messages", method: "GET", path: "/rooms/general/messages?name=curl", status: 200, want: `"text":"hi from curl"`},
		{name: "lobby", method: "GET", path: "/rooms?name=curl", status: 200, want: `{"name":"general","members":1}`},
		{name: "no room", method: "GET", path: "/rooms/nowhere/members?name=curl", status: 404, want: "No room nowhere"},
		{name: "wrong method", method: "PUT", path: "/rooms/general/messages?name=curl", status: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(tc.method, tc.path, tc.header, tc.body)
			assert.Equal(t, tc.status, res.StatusCode, body)
			assert.Contains(t, body, tc.want)
		})
	}
	feed.None(t, 100*time.Millisecond) // nothing refused was published

	// Sign-in sets the sealed cookie, HttpOnly and SameSite=Strict; sign-out clears it.
	res, body = do("GET", "/nes/auth?name=Alice", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.JSONEq(t, `{"status":"authenticated"}`, body)
	cookies := res.Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, "nes", cookies[0].Name)
	assert.True(t, cookies[0].HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookies[0].SameSite)
	res, _ = do("POST", "/signout", nil, "")
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	cookies = res.Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, "nes", cookies[0].Name)
	assert.Equal(t, "/", cookies[0].Path)
	assert.Negative(t, cookies[0].MaxAge)
}

// TestSignOut: sign-out clears the cookie, so that the next connection is anonymous. An open
// WebSocket keeps the user it said hello with; a fallback session is bound to its cookie, and
// the server refuses its next POST once the cookie has changed.
func TestSignOut(t *testing.T) {
	t.Parallel()
	p := start(t)
	for _, transport := range transports {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		hc := httpClient(jar)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = client.FetchToken(ctx, p.URL+"/nes/auth?name=Dana", nil, hc)
		require.NoError(t, err)
		signedIn := p.connect(t, transport, jar)
		req, err := http.NewRequestWithContext(ctx, "POST", p.URL+"/signout", nil)
		require.NoError(t, err)
		res, err := hc.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusNoContent, res.StatusCode)
		hc.CloseIdleConnections()
		assert.Empty(t, jar.Cookies(&url.URL{Scheme: "http", Host: p.addr, Path: "/"}))
		if transport == client.TransportWebSocket {
			var me struct{ User string }
			get(t, signedIn, "/me", &me)
			assert.Equal(t, "Dana", me.User, "an open WebSocket keeps its user")
		}
		_, err = p.connect(t, transport, jar).Request(ctx, "/me")
		serverError(t, err, http.StatusUnauthorized, "Missing authentication")
		cancel()
	}
}

// TestShutdown: SIGINT and SIGTERM end the program with status 0 at once, every transport's
// connections included (a long-poll held open would otherwise keep http.Server.Shutdown
// waiting), and each client is told to reconnect: a WebSocket hears 1012 (service restart),
// a fallback session 1001 (going away).
func TestShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			p := start(t)
			var events []*heraldtest.Events
			for _, transport := range transports {
				var ev heraldtest.Events
				c, err := client.New("ws://"+p.addr, ev.Options(&client.Options{
					Transports:  []string{transport},
					Dial:        &websocket.DialOptions{Proxy: websocket.NoProxy},
					NoReconnect: true,
				}))
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				require.NoError(t, c.Connect(ctx))
				cancel()
				events = append(events, &ev)
			}
			time.Sleep(100 * time.Millisecond) // the long-poll is waiting
			begin := time.Now()
			assert.Equal(t, 0, p.Stop(t, sig, waitFor), "%s", p.Stderr.String())
			assert.Less(t, time.Since(begin), 5*time.Second)
			for i, ev := range events {
				d := ev.Disconnects.Next(t)
				want := 1001
				if transports[i] == client.TransportWebSocket {
					want = 1012
				}
				assert.Equal(t, want, closeCode(d.Err), "%s: %v", transports[i], d.Err)
			}
		})
	}
}

// closeCode returns the close code the server ended a connection with, whatever the transport:
// a WebSocket's close frame, or a fallback session's close event; -1 without one.
func closeCode(err error) int {
	var ce *fallback.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return int(websocket.CloseStatus(err))
}

// TestFlags: mistakes on the command line exit with status 2 and say what is wrong.
func TestFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rooms", ""}, "-rooms names no room"},
		{[]string{"-rooms", "general,Bad!"}, `-rooms: "Bad!" is no room name`},
		{[]string{"-rooms", "a,b,a"}, `-rooms names "a" twice`},
		{[]string{"-history", "-1"}, "-history is -1; it must be 0 or more"},
		{[]string{"-max-rooms", "2"}, "-max-rooms is 2, below the 3 rooms of -rooms"},
		{[]string{"extra"}, `unexpected argument "extra": everything is a flag`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
	} {
		p := testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/chat"), testpeers.ProgramOptions{
			Name: fmt.Sprint("examples/chat ", tc.args),
			Args: tc.args,
		})
		code := p.Wait(t, waitFor)
		out := p.Stdout.String() + p.Stderr.String()
		require.NotZero(t, code, "%v: %s", tc.args, out)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, out, tc.want, "%v", tc.args)
		assert.Contains(t, out, usage, "%v", tc.args)
		assert.Empty(t, p.Stdout.String(), "%v", tc.args)
	}
}

// TestStartupErrors: what a newcomer gets wrong at start is answered with what to do, as by
// examples/nes: -h shows the usage line and the flags and exits 0, a port in use names the
// fix and exits 1, and a broker that does not answer is named on standard error, with the
// command that starts one, while the node keeps serving, and links up once it answers.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	bin := testpeers.BuildProgram(t, "./examples/chat")

	t.Run("-h", func(t *testing.T) {
		t.Parallel()
		p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "examples/chat -h", Args: []string{"-h"}})
		assert.Equal(t, 0, p.Wait(t, waitFor))
		assert.True(t, strings.HasPrefix(p.Stderr.String(), "usage: go run ./examples/chat [-addr HOST:PORT] "), p.Stderr.String())
		assert.True(t, p.Stderr.Contains("-max-rooms int"), p.Stderr.String())
		assert.Empty(t, p.Stdout.String())
	})

	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		addr := ln.Addr().String()
		p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "examples/chat on a used port", Args: []string{"-addr", addr}})
		assert.Equal(t, 1, p.Wait(t, waitFor))
		assert.Equal(t, "chat: -addr "+addr+": listen tcp "+addr+": bind: address already in use: another program (another demo?) listens there; stop it, or pass another -addr (port 0 picks a free one)\n", p.Stderr.String())
		assert.Empty(t, p.Stdout.String())
	})

	t.Run("no Redis", func(t *testing.T) {
		t.Parallel()
		addr := testpeers.ClosedAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		n := startNode(t, "127.0.0.1:0", "-redis", addr)
		n.Stderr.WaitFor(t, "chat: no answer from the Redis server at "+addr+" after 5s: is it running? (redis-server --port "+port+" --save '' --appendonly no)")
		status, body := n.tryGet(t, "/readyz", "", nil)
		assert.Equal(t, http.StatusServiceUnavailable, status, body)
		status, body = n.tryGet(t, "/livez", "", nil)
		assert.Equal(t, http.StatusOK, status, "the node keeps serving: %s", body)
		status, body = n.tryGet(t, "/rooms/general/messages", "Alice", nil)
		assert.Equal(t, http.StatusOK, status, "the node keeps serving: %s", body)
	})

	t.Run("NATS started late", func(t *testing.T) {
		t.Parallel()
		broker := testpeers.StartNATS(t)
		url := broker.URL()
		broker.Shutdown()
		_, port, _ := strings.Cut(strings.TrimPrefix(url, "nats://"), ":")
		a := startNode(t, "127.0.0.1:0", "-nats", url)
		a.Stderr.WaitFor(t, "chat: no answer from the NATS server at "+url+" after 5s: is it running? (nats-server -a 127.0.0.1 -p "+port+")")
		ready(t, a, http.StatusServiceUnavailable)

		broker.Restart()
		ready(t, a, http.StatusOK)
		alice := a.signIn(t, "Alice", client.TransportWebSocket)
		aliceFeed := heraldtest.Subscribe(t, alice, "/rooms/general")
		// A node started now hears of Alice from node A, whose own link (the chat's node)
		// came up by itself, and the two talk.
		b := startNode(t, "127.0.0.1:0", "-nats", url)
		membersOn(t, b, "general", "Alice")
		bob := b.signIn(t, "Bob", client.TransportWebSocket)
		heraldtest.Subscribe(t, bob, "/rooms/general")
		assert.Equal(t, "Bob", next(t, aliceFeed).User, "Bob's joining on node B reaches Alice on node A")
		membersOn(t, a, "general", "Alice", "Bob")
	})
}
