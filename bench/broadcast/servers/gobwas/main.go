// Command gobwas is the broadcast server on github.com/gobwas/ws, as its low-level API
// suggests: every message any connection sends is framed once (ws.CompileFrame) and the
// frame's bytes are put on every connection's buffered channel, the sender's included; each
// connection has a writer goroutine of its own that writes them whole, and a connection whose
// channel is full is dropped. ws.UpgradeHTTP, frames read with wsutil.ReadClientData.
package main

import (
	"net"
	"net/http"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-go/herald/bench/internal/serve"
)

// queue is how many messages may wait for one connection.
const queue = 256

type client struct {
	c    net.Conn
	send chan []byte
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

func (h *hub) broadcast(frame []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		select {
		case cl.send <- frame:
		default:
			delete(h.clients, cl)
			close(cl.send)
		}
	}
}

func main() {
	h := &hub{clients: map[*client]struct{}{}}
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		cl := &client{c: c, send: make(chan []byte, queue)}
		h.add(cl)
		go func() {
			for frame := range cl.send {
				if _, err := c.Write(frame); err != nil {
					h.remove(cl)
					return
				}
			}
		}()
		go func() {
			defer c.Close()
			defer h.remove(cl)
			for {
				data, op, err := wsutil.ReadClientData(c)
				if err != nil {
					return
				}
				frame, err := ws.CompileFrame(ws.NewFrame(op, true, data))
				if err != nil {
					return
				}
				h.broadcast(frame)
			}
		}()
	}))
}
