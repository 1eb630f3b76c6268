// Command coder is the compressed echo server on github.com/coder/websocket:
// Accept with CompressionContextTakeover (a flate.Writer at level 1 and a
// 32 KiB window kept per connection; context is dropped in a direction
// whose peer asks for no context takeover). Messages are read through Reader
// into a reused buffer and written back with Write.
package main

import (
	"bytes"
	"context"
	"net/http"

	"github.com/coder/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
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
	}))
}
