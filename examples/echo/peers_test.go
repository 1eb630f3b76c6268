package main

// Real-peer tests of the echo example: Node's ws client, faye-websocket's Client and Chromium's
// WebSocket (driven by playwright-core) talk to the built program over TCP. The peer scripts in
// internal/testpeers only drive their client and print what it observed, one JSON object per
// line; every check is here.
//
// Run them with `make interop`, or:
//
//	HERALD_REQUIRE_PEERS=1 go test -race -count=1 -run Peer -v ./examples/echo/
//
// Without the peers installed (`make peers`) they skip, or fail under HERALD_REQUIRE_PEERS=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

// limit is the -max-length of the second echo instance.
const limit = 1024

// echoSizes are the message sizes the echo cases use (peerlib.js ECHO_SIZES): the boundaries of
// the 7-bit, 16-bit and 64-bit frame length encodings and a large message.
var echoSizes = []int{0, 125, 126, 65535, 65536, 1<<20 - 1<<10}

// peer says what one client can do and what it does where clients differ.
type peer struct {
	script    string
	browser   bool // the script takes Chromium's path as its third argument
	fragments bool // sends fragmented messages (ws only: the others send one frame per message)
	ping      bool // pings from the API (not browsers)
	noCode    bool // can send a close frame without a code (faye always sends one)
	rawText   bool // can send bytes that are not UTF-8 as a text message (ws only)
	// checkNoMatch checks the case where the client offers only "foo": the server completes the
	// handshake without Sec-WebSocket-Protocol, and each client then does what its rules say.
	checkNoMatch func(t *testing.T, o observation)
}

func TestPeerWS(t *testing.T) {
	testPeer(t, peer{
		script:    "ws-client.js",
		fragments: true,
		ping:      true,
		noCode:    true,
		rawText:   true,
		// ws 8 follows the WHATWG rule (as browsers do), not only RFC 6455 §4.1: a client that
		// offered subprotocols fails a 101 response that selects none ("Server sent no
		// subprotocol"), closing with 1006. The handshake response itself is what the server
		// should send: 101, no Sec-WebSocket-Protocol.
		checkNoMatch: func(t *testing.T, o observation) {
			assert.False(t, o.Opened, "ws must refuse a handshake that selects no offered subprotocol")
			assert.Equal(t, 1006, o.CloseCode)
			assert.Contains(t, o.Errors, "Server sent no subprotocol")
			assert.Equal(t, intp(101), o.UpgradeStatus, "the server must still complete the handshake")
			assert.Nil(t, o.ProtocolHeader, "no Sec-WebSocket-Protocol when nothing matched")
		},
	})
}

func TestPeerFaye(t *testing.T) {
	testPeer(t, peer{
		script: "faye-client.js",
		ping:   true,
		// faye-websocket (websocket-driver) applies RFC 6455 §4.1 only: a missing
		// Sec-WebSocket-Protocol is accepted and the connection opens with protocol "".
		checkNoMatch: func(t *testing.T, o observation) {
			assert.True(t, o.Opened, "errors: %v", o.Errors)
			assert.Equal(t, "", o.Protocol)
			assert.Equal(t, intp(101), o.UpgradeStatus)
			assert.Nil(t, o.ProtocolHeader, "no Sec-WebSocket-Protocol when nothing matched")
			assert.Equal(t, 1000, o.CloseCode, "normal close after opening")
		},
	})
}

func TestPeerBrowser(t *testing.T) {
	testPeer(t, peer{
		script:  "browser-client.js",
		browser: true,
		noCode:  true,
		// Observed in Chromium 156: a 101 response without Sec-WebSocket-Protocol to a request
		// that offered one fails the connection (error event, close 1006, not clean) and the
		// console says "Error during WebSocket handshake: Sent non-empty 'Sec-WebSocket-Protocol'
		// header but no response was received". That is the WHATWG Fetch rule ("establish a
		// WebSocket connection"), stricter than RFC 6455 §4.1. Chromium reports no handshake
		// response through CDP for such a connection.
		checkNoMatch: func(t *testing.T, o observation) {
			assert.False(t, o.Opened, "Chromium must fail a handshake that selects no offered subprotocol")
			assert.Equal(t, 1006, o.CloseCode)
			assert.Equal(t, boolp(false), o.WasClean)
			assert.Contains(t, o.Errors, "error event")
			assert.True(t, containsSubstring(o.Console, "Sent non-empty 'Sec-WebSocket-Protocol' header but no response was received"),
				"console: %q", o.Console)
		},
	})
}

// testPeer starts the echo program twice (default limits and -max-length 1024), runs the
// peer's script against both and checks every case it reports.
func testPeer(t *testing.T, p peer) {
	testpeers.Node(t)
	var args []string
	if p.browser {
		args = append(args, testpeers.Chromium(t))
	}
	bin := testpeers.BuildProgram(t, "./examples/echo")
	t.Parallel()

	srv := startEcho(t, bin)
	lim := startEcho(t, bin, "-max-length", fmt.Sprint(limit))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	out := testpeers.Run(ctx, t, p.script, append([]string{"ws://" + srv, "ws://" + lim}, args...)...)
	obs := parseObservations(t, out)

	if v, ok := obs["browser"]; ok {
		t.Logf("browser version: %s", v.Version)
	}
	get := func(t *testing.T, name string) observation {
		t.Helper()
		o, ok := obs[name]
		require.True(t, ok, "the peer reported no case %q", name)
		require.Empty(t, o.Error, "case %q failed in the peer", name)
		return o
	}

	t.Run("http", func(t *testing.T) {
		for _, name := range []string{"http/root", "http/path"} {
			o := get(t, name)
			assert.Equal(t, 200, o.Status, name)
			assert.True(t, strings.HasPrefix(o.ContentType, "text/plain"), "%s: Content-Type %q", name, o.ContentType)
			assert.Equal(t, "Hello", o.Body, name)
		}
	})

	t.Run("echo", func(t *testing.T) {
		for _, typ := range []string{"text", "binary"} {
			for _, n := range echoSizes {
				name := fmt.Sprintf("echo/%s/%d", typ, n)
				t.Run(fmt.Sprintf("%s/%d", typ, n), func(t *testing.T) {
					o := get(t, name)
					assert.Equal(t, n, o.SentLen, "the peer sent the wrong size")
					checkEcho(t, o, typ)
				})
			}
		}
	})

	t.Run("unicode", func(t *testing.T) {
		o := get(t, "unicode/whole")
		assert.Greater(t, o.SentLen, 1000)
		checkEcho(t, o, "text")
		if p.fragments {
			// Fragments cut inside 2-, 3- and 4-byte characters: only the whole message is valid
			// UTF-8, and the server must accept it and echo it unchanged.
			o := get(t, "unicode/fragmented")
			assert.Len(t, o.Fragments, 5)
			checkEcho(t, o, "text")
		}
	})

	if p.fragments {
		t.Run("fragmented", func(t *testing.T) {
			for _, typ := range []string{"text", "binary"} {
				t.Run(typ, func(t *testing.T) {
					o := get(t, "fragmented/"+typ)
					assert.Equal(t, []int{0, 1000, 70000, 3, 0}, o.Fragments)
					assert.Equal(t, 71003, o.SentLen)
					checkEcho(t, o, typ)
					// The pong came back while the message was still open: the peer waited for it
					// before sending the last fragments.
					assert.True(t, o.PongBeforeLastFragment, "no pong between fragments")
					assert.Equal(t, o.PingHex, o.PongHex, "pong payload")
				})
			}
		})
	}

	if p.ping {
		t.Run("ping", func(t *testing.T) {
			for _, name := range []string{"empty", "text", "max125"} {
				o := get(t, "ping/"+name)
				assert.Equal(t, o.PingHex, o.PongHex, "pong payload for ping/%s", name)
				assert.Equal(t, 1000, o.CloseCode, name)
				assert.Zero(t, o.ExtraMessages, "ping/%s: a ping must not be answered with a message", name)
			}
			assert.Equal(t, 125*2, len(get(t, "ping/max125").PingHex))

			o := get(t, "ping/sequence")
			assert.Equal(t, o.PingsHex, o.PongsHex, "one pong per ping, in order")
			assert.Equal(t, "text", o.RecvType)
			assert.Equal(t, "after pings", o.RecvText)
			assert.Equal(t, 1000, o.CloseCode)
		})
	}

	t.Run("close", func(t *testing.T) {
		for _, name := range []string{"4001-bye", "1000", "3000-unicode", "4999-long"} {
			o := get(t, "close/"+name)
			assert.Equal(t, o.SentCode, o.CloseCode, "close/%s: the server's close reply must echo the code", name)
			assert.Equal(t, o.SentReason, o.CloseReason, "close/%s: and the reason", name)
			if o.WasClean != nil {
				assert.True(t, *o.WasClean, "close/%s: not a clean close", name)
			}
		}
		o := get(t, "close/4001-bye")
		assert.Equal(t, 4001, o.CloseCode)
		assert.Equal(t, "bye", o.CloseReason)
		assert.Equal(t, 123, len(get(t, "close/4999-long").SentReason), "the longest reason a close frame holds")

		if p.noCode {
			// A close frame without a code is echoed as one without a code: the client reports
			// 1005 (no status received).
			o := get(t, "close/no-code")
			assert.Equal(t, 1005, o.CloseCode)
			assert.Equal(t, "", o.CloseReason)
		}
		if p.fragments {
			// Closing while a fragmented message is still open: the close is answered, the
			// unfinished message is not echoed.
			o := get(t, "close/mid-fragment")
			assert.Equal(t, 4002, o.CloseCode)
			assert.Equal(t, "mid", o.CloseReason)
			assert.Zero(t, o.Messages)
		}
	})

	if p.rawText {
		// RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.
		t.Run("utf8", func(t *testing.T) {
			for _, name := range []string{"invalid", "invalid-fragmented", "truncated", "surrogate"} {
				o := get(t, "utf8/"+name)
				assert.Equal(t, 1007, o.CloseCode, "utf8/%s (reason %q)", name, o.CloseReason)
				assert.Zero(t, o.Messages, "utf8/%s: nothing may be echoed", name)
			}
		})
	}

	t.Run("burst", func(t *testing.T) {
		// 4 connections at once, 150 messages of 0-3000 bytes each sent before reading.
		o := get(t, "burst")
		assert.Equal(t, 4, o.Connections)
		assert.Equal(t, 4*150, o.Sent)
		assert.Equal(t, o.Sent, o.Received)
		assert.Empty(t, o.Mismatches, "echoes out of order, changed or with the wrong type")
		assert.Equal(t, []int{1000}, o.CloseCodes)
	})

	if p.browser {
		// Observed in Chromium: the server refuses a page's WebSocket to another origin (the
		// second instance, on another port) with 403, which fails the connection (close 1006).
		t.Run("origin", func(t *testing.T) {
			o := get(t, "origin/cross")
			assert.False(t, o.Opened, "a cross-origin WebSocket must be refused by default")
			assert.Equal(t, 1006, o.CloseCode)
			assert.True(t, containsSubstring(o.Console, "Unexpected response code: 403"), "console: %q", o.Console)
		})
	}

	t.Run("limit", func(t *testing.T) {
		for _, typ := range []string{"text", "binary"} {
			t.Run(typ, func(t *testing.T) {
				o := get(t, fmt.Sprintf("limit/%s/%d", typ, limit))
				assert.Equal(t, limit, o.SentLen)
				checkEcho(t, o, typ)

				o = get(t, fmt.Sprintf("limit/%s/%d", typ, limit+1))
				checkTooBig(t, o)
			})
		}
		if p.fragments {
			t.Run("fragmented", func(t *testing.T) {
				checkTooBig(t, get(t, fmt.Sprintf("limit/fragmented/%d", limit+1)))
			})
		}

		// Text of one repeated letter: with permessage-deflate (ws and Chromium offer it, the
		// echo accepts it) 1025 bytes or 1 MiB compress to a few bytes, and the limit must
		// apply to the decoded size. faye-websocket, without the extension, sends it as is.
		t.Run("compressible", func(t *testing.T) {
			o := get(t, fmt.Sprintf("limit/compressible/%d", limit))
			t.Logf("extensions: %q", o.Extensions)
			assert.Equal(t, limit, o.SentLen)
			checkEcho(t, o, "text")
			for _, n := range []int{limit + 1, 1 << 20} {
				o := get(t, fmt.Sprintf("limit/compressible/%d", n))
				assert.Equal(t, n, o.SentLen)
				checkTooBig(t, o)
			}
		})

		// 4 connections at once each send 4 MiB to the 1024-byte server. Every client must
		// still receive the 1009 close frame, not a reset connection (1006). Node's own ws
		// server (maxPayload 1024) passes this with all three clients.
		//
		// herald failed it before commit f99fccb: on a message over MaxLength, Conn.fail wrote
		// the close frame and closed the socket at once, with the rest of the message unread;
		// Linux answers that with RST, and a client still sending drops the close frame it had
		// not yet read (ws, faye-websocket and Chromium reported 1006 on nearly every
		// connection). herald now half-closes and drains for up to a second first. Whether a
		// browser calls the close clean still depends on its finishing within that second, so
		// wasClean is logged, not checked, here.
		t.Run("large", func(t *testing.T) {
			o := get(t, "limit/large")
			assert.Equal(t, 4<<20, o.SentLen)
			assert.Equal(t, []int{1009, 1009, 1009, 1009}, o.CloseCodes,
				"every client must see 1009, not a reset connection (1006); reasons %q", o.CloseReasons)
			assert.Zero(t, o.Messages)
			if o.WasCleans != nil {
				t.Logf("wasClean: %v", o.WasCleans)
			}
		})
	})

	t.Run("protocol", func(t *testing.T) {
		for _, tc := range []struct{ offer, want string }{
			{"foo,amqp,irc", "amqp"},
			{"irc,amqp", "irc"},
			{"none", ""},
		} {
			t.Run(tc.offer, func(t *testing.T) {
				o := get(t, "protocol/"+tc.offer)
				require.True(t, o.Opened, "errors: %v, console: %v", o.Errors, o.Console)
				assert.Equal(t, tc.want, o.Protocol)
				assert.Equal(t, intp(101), o.UpgradeStatus)
				if tc.want == "" {
					assert.Nil(t, o.ProtocolHeader)
				} else {
					assert.Equal(t, &tc.want, o.ProtocolHeader)
				}
				assert.Equal(t, 1000, o.CloseCode)
			})
		}
		t.Run("foo", func(t *testing.T) {
			p.checkNoMatch(t, get(t, "protocol/foo"))
		})
	})
}

// checkEcho checks that the message came back whole, unchanged and with its type.
func checkEcho(t *testing.T, o observation, typ string) {
	t.Helper()
	assert.Equal(t, typ, o.SentType)
	assert.Equal(t, typ, o.RecvType, "message type")
	assert.Equal(t, o.SentLen, o.RecvLen, "length")
	assert.Equal(t, o.SentSha256, o.RecvSha256, "sha256")
	if assert.NotNil(t, o.FirstDiff, "the peer did not compare the bytes") {
		assert.Equal(t, -1, *o.FirstDiff, "first differing byte")
	}
	if typ == "text" {
		assert.Equal(t, boolp(true), o.RecvEqual, "text compared as a string")
	}
	assert.Equal(t, 1000, o.CloseCode, "the server's reply to a normal close")
	assert.Zero(t, o.ExtraMessages, "messages beyond the echo")
	if o.WasClean != nil {
		assert.True(t, *o.WasClean, "not a clean close")
	}
}

// checkTooBig checks the close of a connection whose message crossed -max-length: 1009, and
// for a browser a clean close (before f99fccb, herald's reset made Chromium's wasClean false
// now and then, even for 1025 bytes).
func checkTooBig(t *testing.T, o observation) {
	t.Helper()
	assert.Equal(t, 1009, o.CloseCode, "close code above -max-length (reason %q)", o.CloseReason)
	assert.Zero(t, o.Messages, "nothing may be echoed from a message over the limit")
	if o.WasClean != nil {
		assert.True(t, *o.WasClean, "not a clean close")
	}
}

// observation is one line a peer script printed: what its client observed in one case (see
// internal/testpeers/peerlib.js). Fields a case does not report stay zero.
type observation struct {
	Case  string `json:"case"`
	Error string `json:"error"`
	Done  bool   `json:"done"`

	Version string `json:"version"` // the browser's

	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`

	SentType   string `json:"sentType"`
	SentLen    int    `json:"sentLen"`
	SentSha256 string `json:"sentSha256"`
	RecvType   string `json:"recvType"`
	RecvLen    int    `json:"recvLen"`
	RecvSha256 string `json:"recvSha256"`
	FirstDiff  *int   `json:"firstDiff"` // -1 when equal
	RecvEqual  *bool  `json:"recvEqual"`
	RecvText   string `json:"recvText"`
	Fragments  []int  `json:"fragments"`

	PingHex                string   `json:"pingHex"`
	PongHex                string   `json:"pongHex"`
	PingsHex               []string `json:"pingsHex"`
	PongsHex               []string `json:"pongsHex"`
	PongBeforeLastFragment bool     `json:"pongBeforeLastFragment"`

	SentCode      int    `json:"sentCode"`
	SentReason    string `json:"sentReason"`
	CloseCode     int    `json:"closeCode"`
	CloseReason   string `json:"closeReason"`
	WasClean      *bool  `json:"wasClean"` // browsers only
	ExtraMessages int    `json:"extraMessages"`
	Messages      int    `json:"messages"`

	Connections int      `json:"connections"`
	Sent        int      `json:"sent"`
	Received    int      `json:"received"`
	Mismatches  []string `json:"mismatches"`
	CloseCodes  []int    `json:"closeCodes"`

	CloseReasons []string `json:"closeReasons"`
	WasCleans    []bool   `json:"wasCleans"` // browsers only

	Opened         bool     `json:"opened"`
	Protocol       string   `json:"protocol"`
	Extensions     string   `json:"extensions"`
	Errors         []string `json:"errors"`
	UpgradeStatus  *int     `json:"upgradeStatus"`
	ProtocolHeader *string  `json:"protocolHeader"`
	Console        []string `json:"console"`
}

// parseObservations reads a peer's output into its cases by name, requiring the final
// {"done": true} line.
func parseObservations(t *testing.T, out string) map[string]observation {
	t.Helper()
	obs := map[string]observation{}
	done := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var o observation
		require.NoError(t, json.Unmarshal([]byte(line), &o), "peer output line %q", line)
		if o.Done {
			done = true
			continue
		}
		require.NotEmpty(t, o.Case, "peer output line %q", line)
		_, dup := obs[o.Case]
		require.False(t, dup, "case %q reported twice", o.Case)
		obs[o.Case] = o
	}
	require.True(t, done, "the peer's output ends early:\n%s", out)
	return obs
}

// listeningAddr is the address the echo program must print: the real port on 127.0.0.1.
var listeningAddr = regexp.MustCompile(`^127\.0\.0\.1:([0-9]+)$`)

// startEcho starts the echo program on 127.0.0.1:0, waits for its one line and returns the
// address it printed; it is killed when the test ends. The test fails if the program exits by
// itself meanwhile, prints more on standard output, or reports a data race or a panic.
func startEcho(t *testing.T, bin string, args ...string) string {
	t.Helper()
	p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{
		Name: fmt.Sprint("echo ", args),
		Args: append([]string{"-addr", "127.0.0.1:0"}, args...),
	})
	addr := p.Listening(t)
	t.Cleanup(func() {
		select {
		case <-p.Exited():
			t.Errorf("echo %v exited during the test: %v", args, p.Err())
		default:
		}
		p.Stop(t, syscall.SIGKILL, 10*time.Second) // and the data race check
		assert.NotContains(t, p.Stderr.String(), "panic:", "echo %v stderr", args)
		_, rest, _ := strings.Cut(p.Stdout.String(), "\n")
		assert.Empty(t, rest, "echo %v: standard output beyond its one line", args)
	})
	m := listeningAddr.FindStringSubmatch(addr)
	require.NotNil(t, m, "echo %v printed the address %q, want \"127.0.0.1:PORT\"", args, addr)
	require.NotEqual(t, "0", m[1], "the printed address must be the real one")
	return addr
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func intp(v int) *int    { return &v }
func boolp(v bool) *bool { return &v }
