package fallback_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// echoMessages are the messages of the echo test: many short ones, text beyond ASCII, and
// long ones.
func echoMessages() []string {
	var msgs []string
	for i := range 300 {
		msgs = append(msgs, fmt.Sprintf(`{"type":"ping","id":%d}`, i))
	}
	msgs = append(msgs,
		"héllo wörld ✓ 世界 🙂",
		"line one\nline two\n",
		"\u2028\u2029 <script>&amp;</script> \"quoted\" \\ back\tslash",
		"", // an empty message
		"data: not a field\n\nid: 7\nevent: close\n",
		strings.Repeat("é", 50<<10), // 100 KiB of two-byte runes
	)
	for i := range 4 {
		msgs = append(msgs, strings.Repeat(string(rune('a'+i)), 100<<10)+fmt.Sprint(i))
	}
	for i := range 50 {
		msgs = append(msgs, fmt.Sprintf("after the long ones %d", i))
	}
	return msgs
}

// TestEcho sends messages up and reads their echoes down with the Go client, over an event
// stream and over long-polls, HTTP/1.1 and HTTP/2: every message comes back once, whole, and in
// order.
func TestEcho(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
			t.Run(proto+"/"+transport, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, proto, nil, echo)
				c := h.dial(transport == fallback.TransportPoll, nil)
				defer c.Close()
				require.Equal(t, transport, c.Transport())
				msgs := echoMessages()

				ctx := context.Background()
				written := make(chan error, 1)
				go func() {
					for _, m := range msgs {
						if err := c.Write(ctx, []byte(m)); err != nil {
							written <- err
							return
						}
					}
					written <- nil
				}()
				got := readN(t, c, len(msgs))
				require.NoError(t, <-written)
				for i := range msgs {
					require.Equal(t, msgs[i], got[i], "message %d", i)
				}

				// Nothing more comes: no message was doubled.
				require.NoError(t, c.Write(ctx, []byte("last")))
				require.Equal(t, []string{"last"}, readN(t, c, 1))
				if transport == fallback.TransportSSE {
					h.mu.Lock()
					major := proto[len("HTTP/")] - '0'
					require.Positive(t, h.protos[int(major)], "no stream over %s", proto)
					h.mu.Unlock()
				}
			})
		}
	}
}
