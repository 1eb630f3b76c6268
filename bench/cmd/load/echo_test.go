package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
	"github.com/herald-go/herald/websocket"
)

// echoServer echoes every message with herald's websocket package, sending back what
// change makes of message n (the message itself, changed, cut, or more than once).
func echoServer(t *testing.T, change func(n int, msg []byte) [][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close(websocket.StatusNormalClosure, "")
		ctx := context.Background()
		var buf []byte
		for n := 0; ; n++ {
			typ, msg, err := c.ReadAppend(ctx, buf[:0])
			if err != nil {
				return
			}
			for _, out := range change(n, msg) {
				if err := c.Write(ctx, typ, out); err != nil {
					return
				}
			}
			buf = msg
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// echo runs echoLoop on one connection to addr for a short window and returns the
// messages it counted and its error.
func echo(t *testing.T, addr string, size, depth int) (int64, error) {
	t.Helper()
	c, err := wsraw.Dial(addr, "/", &wsraw.Options{ReadBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var msgs int64
	err = wsraw.Run([]*wsraw.Conn{c}, wsraw.Load{Duration: 200 * time.Millisecond, Stop: func(w wsraw.Window) { msgs = w.Msgs }},
		func(_ int, c *wsraw.Conn, n *wsraw.Counter, stop *atomic.Bool) error {
			return echoLoop(c, size, depth, 1, n, stop)
		})
	return msgs, err
}

func TestEchoLoop(t *testing.T) {
	honest := echoServer(t, func(_ int, msg []byte) [][]byte { return [][]byte{msg} })
	for _, c := range []struct{ size, depth int }{{64, 1}, {5, 1}, {1024, 4}, {70000, 2}} {
		if n, err := echo(t, honest, c.size, c.depth); err != nil || n == 0 {
			t.Errorf("size %d depth %d: %d echoes, %v", c.size, c.depth, n, err)
		}
	}
}

func TestEchoLoopChecks(t *testing.T) {
	at10 := func(f func(msg []byte) [][]byte) func(int, []byte) [][]byte {
		return func(n int, msg []byte) [][]byte {
			if n == 10 {
				return f(msg)
			}
			return [][]byte{msg}
		}
	}
	for name, change := range map[string]func(int, []byte) [][]byte{
		"a byte changed":     at10(func(msg []byte) [][]byte { msg[len(msg)-1] ^= 1; return [][]byte{msg} }),
		"a sequence changed": at10(func(msg []byte) [][]byte { msg[0] ^= 1; return [][]byte{msg} }),
		"a message twice":    at10(func(msg []byte) [][]byte { return [][]byte{msg, msg} }),
		"a message cut":      at10(func(msg []byte) [][]byte { return [][]byte{msg[:len(msg)-1]} }),
	} {
		if n, err := echo(t, echoServer(t, change), 64, 1); err == nil {
			t.Errorf("%s: no error after %d echoes", name, n)
		}
	}
}
