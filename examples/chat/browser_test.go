package main

// The chat page in Chromium (internal/testpeers/browser-chat.js, with playwright-core and
// Debian's chromium): two people, each in a browser context of their own, over each transport.
//
//	HERALD_REQUIRE_PEERS=1 go test -race -count=1 -run Browser ./examples/chat/
//
// TestBrowserChat runs two people over each transport, then over polls held so that a lobby
// update older than a new room reaches its creator's page mid-subscription; TestBrowserReconnect
// restarts the server under a page.
//
// HERALD_CHAT_README_PNG=docs/chat.png (a path from the repository's root, or an absolute one)
// also stages a conversation and saves Alice's page there: the README's screenshot.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

// pageLook is what browser-chat.js reports one page showed.
type pageLook struct {
	Transport     string
	Forced        bool
	TransportText string
	Connection    string
	Me            string
	Room          string
	Messages      [][2]string // user, text
	Notes         []string
	Members       []string
	Rooms         map[string]struct {
		Joined bool
		Unread int
	}
	ImagesInMessages int
	Pwned            bool
	Stats            map[string]string // the live view at the page's foot: data-stat -> text
}

// statNames are the numbers of the page's live view (its data-stat attributes).
var statNames = []string{"websocket", "sse", "poll", "messagesIn", "messagesOut", "publications", "deliveries"}

// number is how the live view shows a number (toLocaleString('en')): digits, commas.
var number = regexp.MustCompile(`^[0-9][0-9,]*$`)

// chatCase is one line of browser-chat.js: a transport's case.
type chatCase struct {
	Case  string
	Error string
	Saved string

	AliceShared, BobShared         pageLook // both in the shared room
	AliceTalk, BobTalk             pageLook // after a message each
	AliceOwn, BobAfterOwn          pageLook // Alice in her own room, Bob writing in the shared one
	AliceAfterLeave, BobAfterLeave pageLook // Alice back in the shared room, Bob gone from it

	AliceJoined pageLook // the lobby case: Alice in the room she created, with Bob
}

// xss is what Alice types in browser-chat.js.
const xss = `<img src=x onerror="window.__pwned=1"> & <b>bold</b> 🎉`

func TestBrowserChat(t *testing.T) {
	t.Parallel()
	chromium := testpeers.Chromium(t)
	testpeers.Node(t)
	p := start(t)
	shots := t.TempDir()
	args := []string{chromium, p.URL, shots}
	readme := os.Getenv("HERALD_CHAT_README_PNG")
	if readme != "" {
		if !filepath.IsAbs(readme) {
			readme = filepath.Join("..", "..", readme) // the tests run in examples/chat
		}
		abs, err := filepath.Abs(readme)
		require.NoError(t, err)
		readme = abs
		args = append(args, "--readme", readme)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a passing run takes about 10 s
	defer cancel()
	out := testpeers.Run(ctx, t, "browser-chat.js", args...)

	cases := map[string]chatCase{}
	done := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c chatCase
		var end struct{ Done bool }
		require.NoError(t, json.Unmarshal([]byte(line), &c), line)
		require.NoError(t, json.Unmarshal([]byte(line), &end), line)
		done = done || end.Done
		if c.Case != "" {
			cases[c.Case] = c
			assert.Empty(t, c.Error, "case %s", c.Case)
		}
	}
	require.True(t, done, "browser-chat.js was cut short:\n%s", out)
	if readme != "" {
		assert.Equal(t, readme, cases["readme"].Saved)
		t.Logf("README screenshot saved to %s", readme)
	}

	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			c, ok := cases[transport]
			require.True(t, ok, "no %s case in:\n%s", transport, out)
			shared, own := "#"+transport+"-lounge", "#"+transport+"-alice"
			hello := [2]string{"Bob", "Hello from Bob over " + transport + " — ünïcödé ✓"}
			fromAlice := [2]string{"Alice", xss}
			question := [2]string{"Bob", "Are you there, Alice?"}

			for _, l := range []struct {
				name string
				look pageLook
				me   string
			}{
				{"Alice in the shared room", c.AliceShared, "Alice"},
				{"Bob in the shared room", c.BobShared, "Bob"},
				{"Alice after talking", c.AliceTalk, "Alice"},
				{"Bob after talking", c.BobTalk, "Bob"},
				{"Alice in her room", c.AliceOwn, "Alice"},
				{"Bob meanwhile", c.BobAfterOwn, "Bob"},
				{"Alice after Bob left", c.AliceAfterLeave, "Alice"},
				{"Bob after leaving", c.BobAfterLeave, "Bob"},
			} {
				// The transport indicator names the transport in use, and whether it was forced.
				assert.Equal(t, transport, l.look.Transport, l.name)
				assert.Equal(t, transport, l.look.TransportText, l.name)
				assert.Equal(t, transport != "websocket", l.look.Forced, l.name)
				assert.Equal(t, "connected", l.look.Connection, l.name)
				assert.Equal(t, l.me, l.look.Me, l.name)
				// The live view shows this server's numbers (read at the page's load, then
				// every 3 s): each a number, not the placeholder.
				for _, name := range statNames {
					assert.Regexp(t, number, l.look.Stats[name], "%s: the live view's %s", l.name, name)
				}
				// People's text is text: no element made of it, no script run.
				assert.Zero(t, l.look.ImagesInMessages, l.name)
				assert.False(t, l.look.Pwned, l.name)
			}

			// Both in the shared room, each seeing the other.
			for _, l := range []pageLook{c.AliceShared, c.BobShared} {
				assert.Equal(t, shared, l.Room)
				assert.Equal(t, []string{"Alice", "Bob"}, l.Members)
				assert.Empty(t, l.Messages)
			}
			assert.Equal(t, []string{"Bob joined"}, c.AliceShared.Notes, "Alice was there first")

			// Each sees the other's message, as typed.
			assert.Equal(t, [][2]string{hello, fromAlice}, c.AliceTalk.Messages)
			assert.Equal(t, [][2]string{hello, fromAlice}, c.BobTalk.Messages)

			// Alice's own room is hers alone; Bob's next message waits there as unread.
			assert.Equal(t, own, c.AliceOwn.Room)
			assert.Equal(t, [][2]string{{"Alice", "Only Alice here"}}, c.AliceOwn.Messages)
			assert.Equal(t, []string{"Alice"}, c.AliceOwn.Members)
			assert.Equal(t, 1, c.AliceOwn.Rooms[shared[1:]].Unread)
			assert.True(t, c.AliceOwn.Rooms[shared[1:]].Joined)
			assert.Equal(t, shared, c.BobAfterOwn.Room)
			assert.Equal(t, [][2]string{hello, fromAlice, question}, c.BobAfterOwn.Messages, "nothing of Alice's room")
			assert.Contains(t, c.BobAfterOwn.Rooms, own[1:], "the lobby lists Alice's room")
			assert.False(t, c.BobAfterOwn.Rooms[own[1:]].Joined)

			// Back in the shared room Alice has read everything; Bob leaves it.
			assert.Equal(t, shared, c.AliceAfterLeave.Room)
			assert.Equal(t, [][2]string{hello, fromAlice, question}, c.AliceAfterLeave.Messages)
			assert.Equal(t, []string{"Alice"}, c.AliceAfterLeave.Members)
			assert.Equal(t, []string{"Bob joined", "Bob left"}, c.AliceAfterLeave.Notes)
			assert.Zero(t, c.AliceAfterLeave.Rooms[shared[1:]].Unread)
			assert.False(t, c.BobAfterLeave.Rooms[shared[1:]].Joined)
			assert.NotEqual(t, shared, c.BobAfterLeave.Room)

			// The page as it looked (not compared with anything).
			shot := filepath.Join(shots, "chat-"+transport+".png")
			info, err := os.Stat(shot)
			if assert.NoError(t, err) {
				assert.Positive(t, info.Size())
			}
		})
	}

	// A lobby update published before Alice's room existed reached her page while her
	// subscription to it was on its way (browser-chat.js held her polls for that): the page
	// still shows who is in the room, and each presence once.
	t.Run("lobby", func(t *testing.T) {
		c, ok := cases["lobby"]
		require.True(t, ok, "no lobby case in:\n%s", out)
		assert.Equal(t, "#lobby-room", c.AliceJoined.Room)
		assert.Equal(t, []string{"Alice", "Bob"}, c.AliceJoined.Members)
		assert.Equal(t, []string{"Bob joined"}, c.AliceJoined.Notes)
		assert.Equal(t, "#lobby-room", c.AliceAfterLeave.Room)
		assert.Equal(t, []string{"Alice"}, c.AliceAfterLeave.Members)
		assert.Equal(t, []string{"Bob joined", "Bob left"}, c.AliceAfterLeave.Notes)
	})
}

// TestBrowserReconnect: the page says it is reconnecting while the server is down, and comes
// back by itself, signed in (the cookie outlives a restart) and in its room, when the server
// is back on the same address.
func TestBrowserReconnect(t *testing.T) {
	t.Parallel()
	chromium := testpeers.Chromium(t)
	p := start(t)
	peer := testpeers.Start(t, "browser-chat.js", chromium, p.URL, t.TempDir(), "--reconnect")
	phase := func(want string) pageLook {
		t.Helper()
		line := peer.Line(t, 45*time.Second)
		var l struct {
			Phase string
			pageLook
		}
		require.NoError(t, json.Unmarshal([]byte(line), &l), line)
		require.Equal(t, want, l.Phase, line)
		assert.Equal(t, "Alice", l.Me, want)
		assert.Equal(t, "#comeback", l.Room, want)
		return l.pageLook
	}
	before := [2]string{"Alice", "Before the restart"}

	l := phase("ready")
	assert.Equal(t, "connected", l.Connection)
	assert.Equal(t, [][2]string{before}, l.Messages)
	assert.Equal(t, 0, p.stop(t), "%s", p.Stderr.String())

	l = phase("reconnecting")
	assert.Equal(t, "reconnecting", l.Connection)
	startAt(t, p.addr)

	l = phase("back")
	assert.Equal(t, "connected", l.Connection)
	assert.Equal(t, "websocket", l.Transport)
	assert.Equal(t, []string{"Alice"}, l.Members)
	assert.Equal(t, [][2]string{before}, l.Messages, "what the page had stays")

	l = phase("done")
	assert.Equal(t, [][2]string{before, {"Alice", "After the restart"}}, l.Messages)
}
