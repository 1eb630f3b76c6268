// Command server is herald's echo server of the idle benchmark (bench/idle), in one of
// several forms chosen by -impl (idle/nbio has nbio's, in a binary of its own so that neither
// pays for the other's package initialization):
//
//	herald-idle       websocket.Upgrade, then Conn.Serve with Events.IdleMode: no goroutine
//	                  while a connection has nothing to read (herald's idle mode)
//	herald-goroutine  the same Serve without IdleMode: a goroutine per connection
//	herald-read       the loop bench/servers/herald runs: a goroutine per connection in
//	                  Conn.ReadAppend with one reused buffer
//	sse-idle          eventsource.Handler with Options.IdleMode: each stream taken over from
//	                  net/http and watched by the poller (the benchmark holds them idle)
//	sse-goroutine     the same without IdleMode: a goroutine per stream notices the client
//	                  leaving
//	nes-idle          herald's nes server (herald.NewServer) with Options.IdleMode, its
//	                  defaults otherwise (heartbeat every 15 s, which idle/nesload answers)
//	nes-goroutine     the same without IdleMode: a reading goroutine per socket
//
// Every form echoes each message with its type, with the library's defaults otherwise, and
// prints "listening ADDR" once listening (-addr, default 127.0.0.1:0). SIGUSR1 prints Go
// memory statistics to stderr (bench/internal/serve).
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/websocket"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	impl := flag.String("impl", "herald-idle", "herald-idle, herald-goroutine, herald-read, sse-idle, sse-goroutine, nes-idle or nes-goroutine")
	flag.Parse()
	switch *impl {
	case "herald-idle":
		serve.Main(heraldServe(true))
	case "herald-goroutine":
		serve.Main(heraldServe(false))
	case "herald-read":
		serve.Main(http.HandlerFunc(heraldRead))
	case "nes-idle", "nes-goroutine":
		serve.Main(herald.NewServer(nil, &herald.Options{IdleMode: *impl == "nes-idle"}))
	case "sse-idle", "sse-goroutine":
		serve.Main(&eventsource.Handler{
			Options: &eventsource.Options{IdleMode: *impl == "sse-idle"},
			Accept:  func(es *eventsource.EventSource) {}, // held until the client leaves
		})
	default:
		log.Fatalf("unknown -impl %q", *impl)
	}
}

func heraldEcho(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	_ = c.Write(context.Background(), typ, data)
}

func heraldServe(idle bool) http.Handler {
	ev := &websocket.Events{IdleMode: idle, OnMessage: heraldEcho}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c.Serve(ev)
	})
}

func heraldRead(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	go func() {
		defer c.Close(websocket.StatusNormalClosure, "")
		ctx := context.Background()
		var buf []byte
		for {
			typ, msg, err := c.ReadAppend(ctx, buf[:0])
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
			buf = msg
		}
	}()
}
