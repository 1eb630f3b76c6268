// Command gobwas is the broadcast server on github.com/gobwas/ws, as its low-level API
// suggests: every message any connection sends is framed once (ws.CompileFrame) and the
// frame's bytes are put on every connection's buffered channel, the sender's included; each
// connection has a writer goroutine of its own that writes them whole, and a connection whose
// channel is full is dropped. ws.UpgradeHTTP, frames read with wsutil.ReadClientData.
package main

import (
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-go/herald/bench/internal/hub"
	"github.com/herald-go/herald/bench/internal/serve"
)

// queue is how many messages may wait for one connection.
const queue = 256

func main() {
	h := hub.New[[]byte]() // whole frames
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		cl := h.Join(queue)
		go h.Write(cl, func(frame []byte) error {
			_, err := c.Write(frame)
			return err
		})
		go func() {
			defer c.Close()
			defer h.Leave(cl)
			for {
				data, op, err := wsutil.ReadClientData(c)
				if err != nil {
					return
				}
				frame, err := ws.CompileFrame(ws.NewFrame(op, true, data))
				if err != nil {
					return
				}
				h.Broadcast(frame)
			}
		}()
	}))
}
