// Command herald is the echo server on herald's own websocket package:
// Upgrade with zero Options (no extensions, so no compression), then Read
// and Write whole messages on the handler's goroutine.
package main

import (
	"context"
	"net/http"

	"github.com/herald-go/herald/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, &websocket.Options{})
		if err != nil {
			return
		}
		defer c.Close(websocket.StatusNormalClosure, "")
		ctx := context.Background()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
}
