// Command coder is the broadcast server on github.com/coder/websocket, as its chat example
// does it: every connection has a buffered channel of outgoing messages and a writer
// goroutine of its own, and a connection whose channel is full is dropped. Every message any
// connection sends is put on every connection's channel, the sender's included (coder has no
// prepared messages: each write frames it). Accept with CompressionDisabled, as the echo
// server (bench/servers/coder).
package main

import (
	"context"
	"net/http"

	"github.com/coder/websocket"

	"github.com/herald-go/herald/bench/internal/hub"
	"github.com/herald-go/herald/bench/internal/serve"
)

// queue is how many messages may wait for one connection.
const queue = 256

// message is what the hub queues: coder writes a message's type and bytes.
type message struct {
	typ  websocket.MessageType
	data []byte
}

func main() {
	h := hub.New[message]()
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		ctx := context.Background()
		cl := h.Join(queue)
		go h.Write(cl, func(m message) error { return c.Write(ctx, m.typ, m.data) })
		defer c.CloseNow()
		defer h.Leave(cl)
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			h.Broadcast(message{typ, data})
		}
	}))
}
