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
	"sync"

	"github.com/coder/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

// queue is how many messages may wait for one connection.
const queue = 256

type message struct {
	typ  websocket.MessageType
	data []byte
}

type client struct {
	c    *websocket.Conn
	send chan message
}

type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
}

func (h *hub) add(cl *client) {
	h.mu.Lock()
	h.clients[cl] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(cl *client) {
	h.mu.Lock()
	if _, ok := h.clients[cl]; ok {
		delete(h.clients, cl)
		close(cl.send)
	}
	h.mu.Unlock()
}

func (h *hub) broadcast(m message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		select {
		case cl.send <- m:
		default:
			delete(h.clients, cl)
			close(cl.send)
		}
	}
}

func main() {
	h := &hub{clients: map[*client]struct{}{}}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		ctx := context.Background()
		cl := &client{c: c, send: make(chan message, queue)}
		h.add(cl)
		go func() {
			for m := range cl.send {
				if err := c.Write(ctx, m.typ, m.data); err != nil {
					h.remove(cl)
					return
				}
			}
		}()
		defer c.CloseNow()
		defer h.remove(cl)
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			h.broadcast(message{typ, data})
		}
	}))
}
