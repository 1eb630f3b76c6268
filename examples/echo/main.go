// Command echo is herald's WebSocket echo server: every message that arrives on any path goes
// back with the same type. It speaks the subprotocols irc and amqp; every request that is not a
// WebSocket handshake gets "Hello". permessage-deflate is negotiated unless -deflate=false.
//
//	go run ./examples/echo -addr 127.0.0.1:8000 [-max-length N] [-deflate=false]
//
// Its first line on standard output is "listening on http://ADDR".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// config is what the flags set.
type config struct {
	maxLength int64
	deflate   bool
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	var cfg config
	flag.Int64Var(&cfg.maxLength, "max-length", 0, "largest message accepted, in bytes (0 means 64 MiB - 1)")
	flag.BoolVar(&cfg.deflate, "deflate", true, "negotiate permessage-deflate")
	flag.Parse()
	if err := run(*addr, cfg); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, cfg config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	reg := &websocket.Registry{}
	srv := &http.Server{
		Handler:           newHandler(cfg, reg),
		ReadHeaderTimeout: 10 * time.Second, // guards the part of the handshake net/http reads
	}
	srv.RegisterOnShutdown(reg.Shutdown)
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler returns the echo server's handler.
func newHandler(cfg config, reg *websocket.Registry) http.Handler {
	var exts []websocket.Extension
	if cfg.deflate {
		exts = append(exts, deflate.New(deflate.Options{}))
	}
	return &websocket.Handler{
		Accept: echo,
		Options: &websocket.Options{
			Protocols:  []string{"irc", "amqp"},
			MaxLength:  cfg.maxLength,
			Extensions: exts,
			Registry:   reg,
		},
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("Hello"))
		}),
	}
}

// echo sends every message back until the connection closes.
func echo(c *websocket.Conn) {
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
}
