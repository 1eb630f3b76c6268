package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// TestWriteMaxBody writes, with a server's small MaxBody, messages that JSON makes larger
// (escapes) and many small ones that fill batches: every batch the Go client posts fits, so
// all come back; a message that cannot fit in any POST is refused by Write, naming the limit,
// and the session goes on.
func TestWriteMaxBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{MaxBody: 1024}, echo)
	c := h.dial(false, nil)
	defer c.Close()
	ctx := context.Background()
	msgs := []string{
		strings.Repeat("<", 150),      // 900 bytes in JSON
		strings.Repeat("\x01", 150),   // 900
		strings.Repeat("\u2028", 150), // 900, from 450
		strings.Repeat(`"`, 450),      // 900
		strings.Repeat("\xff", 150),   // 900, as U+FFFD
	}
	for i := range 200 {
		msgs = append(msgs, fmt.Sprintf("small <%03d>", i)) // 19 to 24 bytes in JSON: many per batch
	}
	// Write fails while more than MaxBody waits unsent: try again shortly.
	written := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			for {
				err := c.Write(ctx, []byte(m))
				if err == nil {
					break
				}
				if !errors.Is(err, fallback.ErrWriteQueueFull) {
					written <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		written <- nil
	}()
	got := readN(t, c, len(msgs))
	require.NoError(t, <-written)
	for i, m := range msgs {
		if !utf8.ValidString(m) { // text messages are UTF-8: each invalid byte becomes U+FFFD
			m = strings.Repeat("\uFFFD", len(m))
		}
		require.Equal(t, m, got[i], "message %d", i)
	}

	err := c.Write(ctx, []byte(strings.Repeat("<", 200))) // 1200 bytes in JSON
	require.Error(t, err)
	require.Contains(t, err.Error(), "MaxBody")
	require.NoError(t, c.Write(ctx, []byte("still open")))
	require.Equal(t, []string{"still open"}, readN(t, c, 1))
}
