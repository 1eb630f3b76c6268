// Command gws is the compressed echo server on github.com/lxzan/gws: the
// README's "Best Practice" handler (as in bench/servers/gws) with
// PermessageDeflate enabled and context takeover on both sides, as gws
// supports. The rest is gws's defaults: level 1, and with context takeover
// 12-bit windows both ways (ServerMaxWindowBits and ClientMaxWindowBits),
// which is how gws keeps its per-connection state small.
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
		ParallelEnabled: false,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               true,
			ServerContextTakeover: true,
			ClientContextTakeover: true,
		},
		CheckUtf8Enabled: false,
	})
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
