// Command gws is the broadcast server on github.com/lxzan/gws, as its README's broadcast
// example does it: the connections are kept in a set, and every message any connection
// sends goes to all of them, the sender included, through one gws.Broadcaster (which frames
// the message once and writes it with each connection's asynchronous writer). Otherwise the
// echo server's settings (bench/servers/gws): no compression, no UTF-8 check, messages
// handled in order (ParallelEnabled off), ReadLoop on its own goroutine.
package main

import (
	"net/http"
	"sync"

	"github.com/lxzan/gws"

	"github.com/herald-go/herald/bench/internal/serve"
)

type handler struct {
	gws.BuiltinEventHandler
	mu    sync.Mutex
	conns map[*gws.Conn]struct{}
	list  []*gws.Conn // a snapshot of conns, rebuilt when it changes
}

func (h *handler) OnOpen(c *gws.Conn) {
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.list = nil
	h.mu.Unlock()
}

func (h *handler) OnClose(c *gws.Conn, err error) {
	h.mu.Lock()
	delete(h.conns, c)
	h.list = nil
	h.mu.Unlock()
}

func (h *handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (h *handler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.mu.Lock()
	if h.list == nil {
		h.list = make([]*gws.Conn, 0, len(h.conns))
		for x := range h.conns {
			h.list = append(h.list, x)
		}
	}
	list := h.list
	h.mu.Unlock()
	b := gws.NewBroadcaster(m.Opcode, m.Bytes())
	defer b.Close()
	for _, x := range list {
		_ = b.Broadcast(x)
	}
}

func main() {
	h := &handler{conns: map[*gws.Conn]struct{}{}}
	upgrader := gws.NewUpgrader(h, &gws.ServerOption{
		ParallelEnabled:   false,
		PermessageDeflate: gws.PermessageDeflate{Enabled: false},
		CheckUtf8Enabled:  false,
	})
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
