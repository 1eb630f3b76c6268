// Command gorilla is the compressed echo server on github.com/gorilla/websocket:
// Upgrader.EnableCompression, which negotiates permessage-deflate without
// context takeover either way (the only mode gorilla supports) and compresses
// every message written at level 1 (its default). As in bench/servers/gorilla,
// the read buffer is net/http's, write buffers come from a pool, and messages
// are read through NextReader into a reused buffer.
package main

import (
	"bytes"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

var upgrader = websocket.Upgrader{
	EnableCompression: true,
	WriteBufferPool:   &sync.Pool{},
	CheckOrigin:       func(*http.Request) bool { return true },
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
