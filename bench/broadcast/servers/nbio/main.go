// Command nbio is the broadcast server on github.com/lesismal/nbio, in its own form: an
// nbhttp.Engine (its own HTTP server on its own epoll poller, no goroutine per connection)
// with nbio's websocket.Upgrader. The connections are kept in a set, and every message any
// connection sends is written to all of them, the sender included, with Conn.WriteMessage
// (which on the engine's connections queues what the socket cannot take at once and never
// blocks). No compression (the default). -addr as the other servers; it prints
// "listening ADDR" once listening.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/herald-go/herald/bench/internal/proc"
)

type hub struct {
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
	list  []*websocket.Conn // a snapshot of conns, rebuilt when it changes
}

func (h *hub) snapshot() []*websocket.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.list == nil {
		h.list = make([]*websocket.Conn, 0, len(h.conns))
		for c := range h.conns {
			h.list = append(h.list, c)
		}
	}
	return h.list
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	proc.RaiseNoFile()
	logging.SetLevel(logging.LevelNone)
	h := &hub{conns: map[*websocket.Conn]struct{}{}}
	u := websocket.NewUpgrader()
	u.CheckOrigin = func(*http.Request) bool { return true }
	u.OnOpen(func(c *websocket.Conn) {
		h.mu.Lock()
		h.conns[c] = struct{}{}
		h.list = nil
		h.mu.Unlock()
	})
	u.OnClose(func(c *websocket.Conn, err error) {
		h.mu.Lock()
		delete(h.conns, c)
		h.list = nil
		h.mu.Unlock()
	})
	u.OnMessage(func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
		for _, x := range h.snapshot() {
			_ = x.WriteMessage(typ, data)
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := u.Upgrade(w, r, nil); err != nil {
			return
		}
	})
	addrs := []string{*addr}
	engine := nbhttp.NewEngine(nbhttp.Config{Network: "tcp", Addrs: addrs, Handler: mux, MaxLoad: 1 << 20})
	if err := engine.Start(); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", addrs[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	engine.Stop()
}
