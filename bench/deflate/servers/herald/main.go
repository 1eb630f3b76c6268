// Command herald is the compressed echo server on herald's websocket package:
// websocket.Handler with permessage-deflate at its defaults
// (deflate.New(deflate.Options{}): context takeover both ways, 4 KiB of
// context kept per connection for sending, a 15-bit server window, level 1).
// The echo loop runs on the connection's goroutine.
//
// -api picks how messages are read: "read" is Conn.Read, which returns the
// inflated message as a fresh slice; "reader" is Conn.Reader streamed into a
// reused buffer. -context-size and -client-window set deflate.Options
// ContextSize and ClientMaxWindowBits, for trying other settings by hand;
// the benchmark runs the defaults.
package main

import (
	"bytes"
	"context"
	"flag"
	"log"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	api := flag.String("api", "read", "how to read messages: read or reader")
	contextSize := flag.Int("context-size", 0, "deflate.Options.ContextSize (0: the default)")
	clientWindow := flag.Int("client-window", 0, "deflate.Options.ClientMaxWindowBits (0: the default)")
	flag.Parse()
	var echo func(*websocket.Conn)
	switch *api {
	case "read":
		echo = echoRead
	case "reader":
		echo = echoReader
	default:
		log.Fatalf("unknown -api %q", *api)
	}
	serve.Main(&websocket.Handler{
		Accept: echo,
		Options: &websocket.Options{Extensions: []websocket.Extension{
			deflate.New(deflate.Options{ContextSize: *contextSize, ClientMaxWindowBits: *clientWindow}),
		}},
	})
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
	var buf bytes.Buffer
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return
		}
		if err := c.Write(ctx, typ, buf.Bytes()); err != nil {
			return
		}
	}
}
