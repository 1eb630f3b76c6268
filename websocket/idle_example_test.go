package websocket_test

import (
	"context"
	"log"
	"net/http"

	"github.com/herald-go/herald/websocket"
)

// Serve with IdleMode echoes every message without a goroutine per idle connection: the
// handler returns at once, and a worker reads a connection only when it has something to read.
func ExampleConn_Serve() {
	events := &websocket.Events{
		IdleMode: true,
		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			// data is valid until OnMessage returns; Write copies it out before then.
			_ = c.Write(context.Background(), typ, data)
		},
		OnClose: func(c *websocket.Conn, err error) {
			log.Printf("%s left: %v", c.RemoteAddr(), err)
		},
	}
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the request
		}
		c.Serve(events)
	})
}
