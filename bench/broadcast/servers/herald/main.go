// Command herald is the broadcast server on herald's websocket package: every connection
// joins one websocket.Broadcaster, and every message any connection sends is prepared once
// (websocket.NewPreparedMessage: one frame for all of them) and broadcast to all, the sender
// included. Broadcast queues the message on each connection and returns; the shared writer
// pool writes it. Options are the zero value (no compression); the handler returns after
// Upgrade, and the reading runs on a goroutine of its own, as Upgrade's documentation advises.
package main

import (
	"context"
	"net/http"

	"github.com/herald-go/herald/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	b := websocket.NewBroadcaster(nil)
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, &websocket.Options{})
		if err != nil {
			return
		}
		b.Add(c)
		go func() {
			defer c.Close(websocket.StatusNormalClosure, "")
			defer b.Remove(c)
			for {
				typ, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				pm, err := websocket.NewPreparedMessage(typ, data)
				if err != nil {
					return
				}
				b.Broadcast(pm)
			}
		}()
	}))
}
