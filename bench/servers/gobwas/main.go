// Command gobwas is the plain echo server on github.com/gobwas/ws: the
// first example of its README, a goroutine per connection reading whole
// messages with wsutil.ReadClientData and writing them back with
// wsutil.WriteServerMessage. gobwas/ws has no compression unless asked.
//
// With -deflate (the compressed benchmark, bench/deflate) it serves as the
// wsflate section of the README shows instead: see deflate.go.
package main

import (
	"flag"
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-go/herald/bench/internal/serve"
)

func main() {
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (wsflate)")
	flag.Parse()
	if *deflate {
		serve.Main(http.HandlerFunc(serveDeflate))
		return
	}
	// Bound the messages read by the wsutil helpers, as the README does.
	wsutil.SetMaxMessageSize(1 << 20)
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			for {
				msg, op, err := wsutil.ReadClientData(conn)
				if err != nil {
					return
				}
				if err := wsutil.WriteServerMessage(conn, op, msg); err != nil {
					return
				}
			}
		}()
	}))
}
