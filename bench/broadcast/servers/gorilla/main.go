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

	"github.com/herald-go/herald/bench/internal/hub"
	"github.com/herald-go/herald/bench/internal/serve"
)

// queue is how many messages may wait for one connection.
const queue = 256

func main() {
	upgrader := websocket.Upgrader{
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	h := hub.New[*websocket.PreparedMessage]()
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		cl := h.Join(queue)
		go func() {
			defer c.Close()
			h.Write(cl, c.WritePreparedMessage)
		}()
		defer c.Close()
		defer h.Leave(cl)
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			pm, err := websocket.NewPreparedMessage(typ, data)
			if err != nil {
				return
			}
			h.Broadcast(pm)
		}
	}))
}
