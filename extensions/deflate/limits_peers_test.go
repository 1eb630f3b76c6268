package deflate_test

// MaxLength bounds the message, which is the inflated data, not its compressed form:
// incompressible data grows a little when a peer compresses it anyway (Node's ws turns a
// 1,047,552-byte random message into a 1,049,725-byte frame), and a message under MaxLength
// must pass whatever its compressed size. These tests send random bytes of every size near
// the limit through real peers, both ways: to herald's server from Node's ws, faye-websocket
// and Chromium, and to herald's client from a Node ws server.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// limit is MaxLength in these tests: 1 MiB, as in the report.
const limit = 1 << 20

// underLimit are message sizes that must pass: the report's, and the last bytes to the limit.
var underLimit = []int{limit - 1024, limit - 64, limit - 1, limit}

// runLimitPeer runs deflate-client.js with cfg and msgs against s and returns what it saw.
func runLimitPeer(t *testing.T, s *echoServer, cfg map[string]any, msgs []message) peerResult {
	t.Helper()
	return runDeflateClient(t, s, cfg, msgs, 90*time.Second)
}

func randomMessages(sizes ...int) []message {
	msgs := make([]message, len(sizes))
	for i, n := range sizes {
		msgs[i] = message{"binary", n, "random"}
	}
	return msgs
}

// TestPeerIncompressibleNearLimitServer: herald's server with MaxLength 1 MiB takes random
// messages up to 1 MiB from real clients that compress them (into frames larger than 1 MiB),
// and closes with 1009 at 1 MiB + 1.
func TestPeerIncompressibleNearLimitServer(t *testing.T) {
	testpeers.Node(t)
	peers := []struct {
		name string
		cfg  func(t *testing.T) map[string]any
	}{
		{"ws", func(*testing.T) map[string]any {
			return map[string]any{"peer": "ws", "pmd": map[string]any{"threshold": 0}}
		}},
		{"ws full window", func(*testing.T) map[string]any {
			return map[string]any{"peer": "ws", "pmd": map[string]any{"threshold": 0, "clientMaxWindowBits": 15}}
		}},
		{"faye", func(*testing.T) map[string]any { return map[string]any{"peer": "faye"} }},
		{"chromium", func(t *testing.T) map[string]any {
			return map[string]any{"peer": "chromium", "chromium": testpeers.Chromium(t)}
		}},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cfg := p.cfg(t)
			t.Run("under the limit", func(t *testing.T) {
				s := startEchoLimit(t, deflate.Options{}, limit)
				msgs := randomMessages(underLimit...)
				r := runLimitPeer(t, s, cfg, msgs)
				require.Empty(t, r.Error)
				assert.Equal(t, 1000, r.CloseCode, "a message within MaxLength was refused")
				require.Len(t, r.Results, len(msgs))
				for i, m := range msgs {
					assert.True(t, r.Results[i].OK, "message %d (%d bytes) echoed differently", i, m.Size)
				}
				// Every one of these peers compresses random data too: the frames were larger
				// than the messages, which is the case under test.
				assert.Greater(t, s.l.in.Load(), payloadBytes(msgs), "the client did not compress")
			})
			t.Run("over the limit", func(t *testing.T) {
				s := startEchoLimit(t, deflate.Options{}, limit)
				r := runLimitPeer(t, s, cfg, randomMessages(limit+1))
				assert.Equal(t, 1009, r.CloseCode, "error %q", r.Error)
				assert.Empty(t, r.Results)
			})
		})
	}
}

// TestPeerIncompressibleNearLimitClient: herald's client with MaxLength 1 MiB takes random
// messages up to 1 MiB from Node's ws server, which compresses them into larger frames, and
// fails the connection with 1009 at 1 MiB + 1.
func TestPeerIncompressibleNearLimitClient(t *testing.T) {
	testpeers.Node(t)
	for _, tc := range []struct {
		name string
		pmd  map[string]any
		ext  deflate.Options
	}{
		{"defaults", nil, deflate.Options{}},
		{"no context takeover", map[string]any{"serverNoContextTakeover": true}, deflate.Options{ServerNoContextTakeover: true}},
		{"server window 9", map[string]any{"serverMaxWindowBits": 9}, deflate.Options{ServerMaxWindowBits: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			arg, _ := json.Marshal(map[string]any{"maxPayload": 64 << 20, "pmd": tc.pmd})
			srv := testpeers.Start(t, "deflate-echo-server.js", string(arg))
			var port int
			line := srv.Line(t, 20*time.Second)
			_, err := fmt.Sscanf(line, "listening %d", &port)
			require.NoError(t, err, line)
			url := fmt.Sprintf("ws://127.0.0.1:%d/", port)

			dial := func(t *testing.T) *websocket.Conn {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
					MaxLength: limit, PingInterval: -1, Extensions: []websocket.Extension{deflate.New(tc.ext)},
				})
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(c.Extensions(), "permessage-deflate"), c.Extensions())
				t.Cleanup(func() { _ = c.CloseNow() })
				return c
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			c := dial(t)
			for _, n := range underLimit {
				msg := make([]byte, n)
				_, _ = rand.Read(msg)
				require.NoError(t, c.Write(ctx, websocket.MessageBinary, msg))
				typ, got, err := c.Read(ctx)
				require.NoError(t, err, "a %d-byte message within MaxLength was refused", n)
				assert.Equal(t, websocket.MessageBinary, typ)
				assert.True(t, string(got) == string(msg), "the %d-byte echo differs", n)
			}
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

			c = dial(t)
			msg := make([]byte, limit+1)
			_, _ = rand.Read(msg)
			require.NoError(t, c.Write(ctx, websocket.MessageBinary, msg))
			_, _, err = c.Read(ctx)
			var pe *websocket.ProtocolError
			require.True(t, errors.As(err, &pe), "Read: %v", err)
			assert.Equal(t, websocket.StatusMessageTooBig, pe.Code)
		})
	}
}
