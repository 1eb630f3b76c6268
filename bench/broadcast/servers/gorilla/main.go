// Command gorilla is the broadcast server on github.com/gorilla/websocket, as its chat
// example does it: a hub keeps the connections, each with a buffered channel of outgoing
// messages and a writer goroutine of its own (gorilla allows one writer at a time per
// connection), and a connection whose channel is full is dropped. Every message any
// connection sends becomes one websocket.PreparedMessage (framed once for all of them) and is
// put on every connection's channel, the sender's included. The Upgrader is the echo
// server's (bench/servers/gorilla): net/http's read buffer, pooled write buffers, no
// compression.
package main

import (
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

// queue is how many messages may wait for one connection.
const queue = 256

type client struct {
	c    *websocket.Conn
	send chan *websocket.PreparedMessage
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

// remove takes cl out and closes its channel, once.
func (h *hub) remove(cl *client) {
	h.mu.Lock()
	if _, ok := h.clients[cl]; ok {
		delete(h.clients, cl)
		close(cl.send)
	}
	h.mu.Unlock()
}

func (h *hub) broadcast(pm *websocket.PreparedMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		select {
		case cl.send <- pm:
		default:
			delete(h.clients, cl)
			close(cl.send)
		}
	}
}

func main() {
	upgrader := websocket.Upgrader{
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	h := &hub{clients: map[*client]struct{}{}}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		cl := &client{c: c, send: make(chan *websocket.PreparedMessage, queue)}
		h.add(cl)
		go func() {
			defer c.Close()
			for pm := range cl.send {
				if err := c.WritePreparedMessage(pm); err != nil {
					h.remove(cl)
					return
				}
			}
		}()
		defer c.Close()
		defer h.remove(cl)
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			pm, err := websocket.NewPreparedMessage(typ, data)
			if err != nil {
				return
			}
			h.broadcast(pm)
		}
	}))
}
