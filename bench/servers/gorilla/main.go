// Command gorilla is the echo server on github.com/gorilla/websocket.
//
// Written as its docs advise for many connections: the read buffer is the
// one net/http already allocated (ReadBufferSize zero), write buffers come
// from a pool (WriteBufferPool) so that idle connections hold none, and
// compression stays off (the default). Messages are read through NextReader
// into a reused buffer, so reading allocates only until the buffer has grown
// to the message size, and written back with WriteMessage in one frame.
package main

import (
	"bytes"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

var upgrader = websocket.Upgrader{
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true },
}

func main() {
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var buf bytes.Buffer
		for {
			typ, rd, err := c.NextReader()
			if err != nil {
				return
			}
			buf.Reset()
			if _, err := buf.ReadFrom(rd); err != nil {
				return
			}
			if err := c.WriteMessage(typ, buf.Bytes()); err != nil {
				return
			}
		}
	}))
}
