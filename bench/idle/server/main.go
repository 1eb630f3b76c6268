// Command server is the echo server of the idle benchmark (bench/idle), in one of several
// forms chosen by -impl:
//
//	herald-idle       websocket.Upgrade, then Conn.Serve with Events.IdleMode: no goroutine
//	                  while a connection has nothing to read (herald's idle mode)
//	herald-goroutine  the same Serve without IdleMode: a goroutine per connection
//	herald-read       the loop bench/servers/herald runs: a goroutine per connection in
//	                  Conn.ReadAppend with one reused buffer
//	nbio-std          lesismal/nbio's Upgrader on net/http, moving each upgraded connection
//	                  onto nbio's poller (UpgradeAndTransferConnToPoller)
//	nbio-engine       nbio's own HTTP server (nbhttp.Engine) and its Upgrader
//	sse-idle          eventsource.Handler with Options.IdleMode: each stream taken over from
//	                  net/http and watched by the poller (the benchmark holds them idle)
//	sse-goroutine     the same without IdleMode: a goroutine per stream notices the client
//	                  leaving
//
// Every form echoes each message with its type, with the library's defaults otherwise, and
// prints "listening ADDR" once listening (-addr, default 127.0.0.1:0). SIGUSR1 prints Go
// memory statistics to stderr (bench/internal/serve).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	nbws "github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/websocket"

	"github.com/herald-go/herald/bench/internal/proc"
	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	impl := flag.String("impl", "herald-idle", "herald-idle, herald-goroutine, herald-read, nbio-std or nbio-engine")
	flag.Parse()
	switch *impl {
	case "herald-idle":
		serve.Main(heraldServe(true))
	case "herald-goroutine":
		serve.Main(heraldServe(false))
	case "herald-read":
		serve.Main(http.HandlerFunc(heraldRead))
	case "nbio-std":
		nbioStd()
	case "nbio-engine":
		nbioEngine()
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

func nbioUpgrader() *nbws.Upgrader {
	u := nbws.NewUpgrader()
	u.OnMessage(func(c *nbws.Conn, mt nbws.MessageType, data []byte) {
		_ = c.WriteMessage(mt, data)
	})
	return u
}

// nbioStd is net/http's server, with each upgraded connection moved onto nbio's poller.
func nbioStd() {
	engine := nbhttp.NewEngine(nbhttp.Config{})
	if err := engine.Start(); err != nil {
		log.Fatal(err)
	}
	u := nbioUpgrader()
	u.Engine = engine
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = u.UpgradeAndTransferConnToPoller(w, r, nil)
	}))
}

// nbioEngine is nbio's own HTTP server.
func nbioEngine() {
	addr := flag.Lookup("addr").Value.String()
	proc.RaiseNoFile()
	u := nbioUpgrader()
	var ln net.Listener
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{addr},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = u.Upgrade(w, r, nil)
		}),
		Listen: func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			ln = l
			return l, err
		},
	})
	if err := engine.Start(); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	for {
		time.Sleep(time.Hour)
	}
}
