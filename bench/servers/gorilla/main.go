// Command gorilla is the echo server on github.com/gorilla/websocket.
//
// Written as its docs advise for many connections: the read buffer is the
// one net/http already allocated (ReadBufferSize zero), write buffers come
// from a pool (WriteBufferPool) so that idle connections hold none, and
// compression stays off (the default). Messages are read through NextReader
// into a reused buffer, so reading allocates only until the buffer has grown
// to the message size, and written back with WriteMessage in one frame.
//
// With -deflate (the compressed benchmark, bench/deflate) the Upgrader has
// EnableCompression, which negotiates permessage-deflate without context
// takeover either way (the only mode gorilla supports) and compresses every
// message written at level 1 (its default).
package main

import (
	"flag"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (Upgrader.EnableCompression)")
	flag.Parse()
	upgrader := websocket.Upgrader{
		EnableCompression: *deflate,
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       func(*http.Request) bool { return true },
	}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		serve.EchoReader(c.NextReader, c.WriteMessage)
	}))
}
