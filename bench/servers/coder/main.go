// Command coder is the echo server on github.com/coder/websocket.
//
// Compression is disabled explicitly (CompressionDisabled); with -deflate
// (the compressed benchmark, bench/deflate) Accept uses
// CompressionContextTakeover instead: a flate.Writer at level 1 and a 32 KiB
// window kept per connection, context dropped in a direction whose peer asks
// for no context takeover. Messages are read through Reader into a reused
// buffer rather than with Read, which allocates a fresh slice per message,
// and written back with Write, which sends one frame.
package main

import (
	"context"
	"flag"
	"io"
	"net/http"

	"github.com/coder/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (CompressionContextTakeover)")
	flag.Parse()
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	if *deflate {
		opts.CompressionMode = websocket.CompressionContextTakeover
	}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		serve.EchoReader(func() (websocket.MessageType, io.Reader, error) { return c.Reader(ctx) },
			func(typ websocket.MessageType, p []byte) error { return c.Write(ctx, typ, p) })
	}))
}
