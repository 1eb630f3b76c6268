// Command gws is the echo server on github.com/lxzan/gws.
//
// Written as its README's "Best Practice" shows, less compression: an event
// handler whose OnMessage writes the message back and releases it to gws's
// pool, messages handled in order on the connection's own goroutine
// (ParallelEnabled off), no UTF-8 check (CheckUtf8Enabled off, the default),
// and ReadLoop in its own goroutine so the net/http handler can return.
package main

import (
	"net/http"

	"github.com/lxzan/gws"

	"github.com/herald-go/herald/bench/internal/serve"
)

type handler struct {
	gws.BuiltinEventHandler
}

func (handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (handler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	upgrader := gws.NewUpgrader(handler{}, &gws.ServerOption{
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
