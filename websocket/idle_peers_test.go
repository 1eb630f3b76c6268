package websocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// peerCase is what internal/testpeers/peerlib.js reports for one case (the fields these
// checks read).
type peerCase struct {
	Case        string   `json:"case"`
	Error       string   `json:"error"`
	Done        bool     `json:"done"`
	SentType    string   `json:"sentType"`
	SentLen     int      `json:"sentLen"`
	SentSha256  string   `json:"sentSha256"`
	RecvType    string   `json:"recvType"`
	RecvLen     int      `json:"recvLen"`
	RecvSha256  string   `json:"recvSha256"`
	PingHex     string   `json:"pingHex"`
	PongHex     string   `json:"pongHex"`
	PingsHex    []string `json:"pingsHex"`
	PongsHex    []string `json:"pongsHex"`
	SentCode    int      `json:"sentCode"`
	SentReason  string   `json:"sentReason"`
	CloseCode   int      `json:"closeCode"`
	CloseReason string   `json:"closeReason"`
	CloseCodes  []int    `json:"closeCodes"`
	Messages    int      `json:"messages"`
	Sent        int      `json:"sent"`
	Received    int      `json:"received"`
	Mismatches  []string `json:"mismatches"`
	Opened      bool     `json:"opened"`
	Protocol    string   `json:"protocol"`

	PongBeforeLastFragment bool `json:"pongBeforeLastFragment"`
}

// idleEchoHandler is examples/echo's handler with every connection served in idle mode.
func idleEchoHandler(t *testing.T, maxLength int64) string {
	reg := &websocket.Registry{}
	opts := &websocket.Options{
		Protocols:  []string{"irc", "amqp"},
		MaxLength:  maxLength,
		Extensions: []websocket.Extension{deflate.New(deflate.Options{})},
		Registry:   reg,
	}
	notIdle := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocket(r) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("Hello"))
			return
		}
		c, err := websocket.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		c.Serve(&websocket.Events{
			IdleMode: true,
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				_ = c.Write(context.Background(), typ, data)
			},
		})
		if !c.IdleMode() {
			select {
			case notIdle <- r.RemoteAddr:
			default:
			}
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		reg.Shutdown()
		select {
		case a := <-notIdle:
			t.Errorf("the connection from %s was not served in idle mode", a)
		default:
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestIdleModePeerWS runs Node's ws client through examples/echo's cases (internal/testpeers
// ws-client.js) against two servers whose connections are all served in idle mode: one with
// the default limits and one with MaxLength 1024.
func TestIdleModePeerWS(t *testing.T) {
	testpeers.Node(t)
	t.Parallel()
	const limit = 1024
	base := idleEchoHandler(t, 0)
	limited := idleEchoHandler(t, limit)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	out := testpeers.Run(ctx, t, "ws-client.js", base, limited)

	obs := map[string]peerCase{}
	done := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var o peerCase
		require.NoError(t, json.Unmarshal([]byte(line), &o), "peer output line %q", line)
		if o.Done {
			done = true
			continue
		}
		obs[o.Case] = o
	}
	require.True(t, done, "the peer's output ends early:\n%s", out)
	get := func(t *testing.T, name string) peerCase {
		t.Helper()
		o, ok := obs[name]
		require.True(t, ok, "the peer reported no case %q", name)
		require.Empty(t, o.Error, "case %q failed in the peer", name)
		return o
	}
	echoed := func(t *testing.T, o peerCase, typ string) {
		t.Helper()
		assert.Equal(t, typ, o.RecvType, "%s: message type", o.Case)
		assert.Equal(t, o.SentLen, o.RecvLen, "%s: length", o.Case)
		assert.Equal(t, o.SentSha256, o.RecvSha256, "%s: bytes", o.Case)
		assert.Equal(t, 1000, o.CloseCode, "%s: the reply to a normal close", o.Case)
	}

	for _, typ := range []string{"text", "binary"} {
		for _, n := range []int{0, 125, 126, 65535, 65536, 1<<20 - 1<<10} {
			echoed(t, get(t, fmt.Sprintf("echo/%s/%d", typ, n)), typ)
		}
		o := get(t, "fragmented/"+typ)
		echoed(t, o, typ)
		assert.True(t, o.PongBeforeLastFragment, "a ping between fragments is answered at once")
		assert.Equal(t, o.PingHex, o.PongHex)
		echoed(t, get(t, fmt.Sprintf("limit/%s/%d", typ, limit)), typ)
		assert.Equal(t, 1009, get(t, fmt.Sprintf("limit/%s/%d", typ, limit+1)).CloseCode)
	}
	echoed(t, get(t, "unicode/whole"), "text")
	echoed(t, get(t, "unicode/fragmented"), "text")
	for _, name := range []string{"empty", "text", "max125"} {
		o := get(t, "ping/"+name)
		assert.Equal(t, o.PingHex, o.PongHex, "ping/%s", name)
	}
	o := get(t, "ping/sequence")
	assert.Equal(t, o.PingsHex, o.PongsHex, "one pong per ping, in order")
	for _, name := range []string{"4001-bye", "1000", "3000-unicode", "4999-long"} {
		o := get(t, "close/"+name)
		assert.Equal(t, o.SentCode, o.CloseCode, "close/%s", name)
		assert.Equal(t, o.SentReason, o.CloseReason, "close/%s", name)
	}
	assert.Equal(t, 1005, get(t, "close/no-code").CloseCode)
	o = get(t, "close/mid-fragment")
	assert.Equal(t, 4002, o.CloseCode)
	assert.Zero(t, o.Messages)
	for _, name := range []string{"invalid", "invalid-fragmented", "truncated", "surrogate"} {
		o := get(t, "utf8/"+name)
		assert.Equal(t, 1007, o.CloseCode, "utf8/%s", name)
		assert.Zero(t, o.Messages, "utf8/%s", name)
	}
	o = get(t, "burst")
	assert.Equal(t, 4*150, o.Sent)
	assert.Equal(t, o.Sent, o.Received)
	assert.Empty(t, o.Mismatches)
	echoed(t, get(t, fmt.Sprintf("limit/compressible/%d", limit)), "text")
	for _, n := range []int{limit + 1, 1 << 20} {
		assert.Equal(t, 1009, get(t, fmt.Sprintf("limit/compressible/%d", n)).CloseCode)
	}
	o = get(t, "limit/large")
	assert.Equal(t, []int{1009, 1009, 1009, 1009}, o.CloseCodes, "every client sees 1009, not a reset")
	o = get(t, "protocol/foo,amqp,irc")
	assert.True(t, o.Opened)
	assert.Equal(t, "amqp", o.Protocol)
}
