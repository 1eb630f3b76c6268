// Command gws is the echo server on github.com/lxzan/gws.
//
// Written as its README's "Best Practice" shows, less compression: an event
// handler whose OnMessage writes the message back and releases it to gws's
// pool, messages handled in order on the connection's own goroutine
// (ParallelEnabled off), no UTF-8 check (CheckUtf8Enabled off, the default),
// and ReadLoop in its own goroutine so the net/http handler can return.
//
// With -deflate (the compressed benchmark, bench/deflate) PermessageDeflate
// is enabled with context takeover on both sides, as gws supports. The rest
// is gws's defaults: level 1, and with context takeover 12-bit windows both
// ways (ServerMaxWindowBits and ClientMaxWindowBits), which is how gws keeps
// its per-connection state small.
package main

import (
	"flag"
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
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate with context takeover both ways")
	flag.Parse()
	pmd := gws.PermessageDeflate{Enabled: false}
	if *deflate {
		pmd = gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true}
	}
	upgrader := gws.NewUpgrader(handler{}, &gws.ServerOption{
		ParallelEnabled:   false,
		PermessageDeflate: pmd,
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
