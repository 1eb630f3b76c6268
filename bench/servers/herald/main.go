// Command herald is the echo server on herald's own websocket package:
// Upgrade with zero Options (no extensions, so no compression), then read
// and write whole messages on a goroutine of their own (-go, the default).
//
// -api picks how messages are read: "append" is Conn.ReadAppend into one
// reused buffer, which allocates nothing per message; "read" is Conn.Read,
// which returns a fresh slice per message; "reader" is Conn.Reader streamed
// into a reused buffer, which allocates only a small reader per message. The
// default is the one that measured fastest (see README.md). By default the handler
// returns after Upgrade and the echo runs on its own goroutine, as
// websocket.Upgrade's documentation advises (net/http then frees its
// per-request buffers); -go=false and -no-ping start variants for comparison.
//
// With -deflate (the compressed benchmark, bench/deflate) the Options carry
// permessage-deflate at its defaults (deflate.New(deflate.Options{}): context
// takeover both ways, 4 KiB of context kept per connection for sending, a
// 15-bit server window, a 12-bit window asked of clients that keep context,
// level 1), and -api defaults to "read", as the
// compressed benchmark has always measured. -context-size and -client-window
// set deflate.Options ContextSize and ClientMaxWindowBits, for trying other
// settings by hand; the benchmark runs the defaults.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net/http"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	api := flag.String("api", "", "how to read messages: append, read or reader (empty: append, or read with -deflate)")
	spawn := flag.Bool("go", true, "echo on a new goroutine and return from the handler, as websocket.Upgrade's documentation advises and websocket.Handler does (-go=false keeps net/http's goroutine, for comparison)")
	noPing := flag.Bool("no-ping", false, "turn automatic pings off (a variant for comparison)")
	compress := flag.Bool("deflate", false, "negotiate permessage-deflate (extensions/deflate)")
	contextSize := flag.Int("context-size", 0, "with -deflate: deflate.Options.ContextSize (0: the default)")
	clientWindow := flag.Int("client-window", 0, "with -deflate: deflate.Options.ClientMaxWindowBits (0: the default)")
	flag.Parse()
	opts := &websocket.Options{}
	if *noPing {
		opts.PingInterval = -1
	}
	if *compress {
		opts.Extensions = []websocket.Extension{
			deflate.New(deflate.Options{ContextSize: *contextSize, ClientMaxWindowBits: *clientWindow}),
		}
	}
	var echo func(*websocket.Conn)
	switch *api {
	case "":
		echo = echoAppend
		if *compress {
			echo = echoRead
		}
	case "append":
		echo = echoAppend
	case "read":
		echo = echoRead
	case "reader":
		echo = echoReader
	default:
		log.Fatalf("unknown -api %q", *api)
	}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		if *spawn {
			go func() {
				defer c.Close(websocket.StatusNormalClosure, "")
				echo(c)
			}()
			return
		}
		defer c.Close(websocket.StatusNormalClosure, "")
		echo(c)
	}))
}

func echoAppend(c *websocket.Conn) {
	ctx := context.Background()
	var buf []byte
	for {
		typ, msg, err := c.ReadAppend(ctx, buf[:0])
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
		buf = msg
	}
}

func echoRead(c *websocket.Conn) {
	ctx := context.Background()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, data); err != nil {
			return
		}
	}
}

func echoReader(c *websocket.Conn) {
	ctx := context.Background()
	serve.EchoReader(func() (websocket.MessageType, io.Reader, error) { return c.Reader(ctx) },
		func(typ websocket.MessageType, p []byte) error { return c.Write(ctx, typ, p) })
}
