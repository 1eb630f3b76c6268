// Command nbio is nbio's echo server of the idle benchmark (bench/idle), in the form -impl
// chooses:
//
//	nbio-std     lesismal/nbio's Upgrader on net/http, moving each upgraded connection onto
//	             nbio's poller (UpgradeAndTransferConnToPoller)
//	nbio-engine  nbio's own HTTP server (nbhttp.Engine) and its Upgrader
//
// Each echoes every message with its type, with nbio's defaults otherwise, and prints
// "listening ADDR" once listening (-addr, default 127.0.0.1:0).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	nbws "github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/herald-go/herald/bench/internal/proc"
	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	impl := flag.String("impl", "nbio-std", "nbio-std or nbio-engine")
	flag.Parse()
	switch *impl {
	case "nbio-std":
		nbioStd()
	case "nbio-engine":
		nbioEngine()
	default:
		log.Fatalf("unknown -impl %q", *impl)
	}
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
