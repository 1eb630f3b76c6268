// Command echo is herald's WebSocket echo server: every message that arrives on any path goes
// back with the same type. It speaks the subprotocols irc and amqp; every request that is not a
// WebSocket handshake or an EventSource gets "Hello". permessage-deflate is negotiated unless
// -deflate=false.
//
// An EventSource request on any path (a GET with Accept: text/event-stream) gets an event
// stream: "retry: 10000" first, a keep-alive comment every 15 seconds,
// Access-Control-Allow-Origin: *, and an event every -interval with "id: N" and "data: tick N",
// N starting at the client's Last-Event-ID (header, or lastEventId query parameter) plus one.
//
//	go run ./examples/echo -addr 127.0.0.1:8000 [-max-length N] [-deflate=false] [-interval 1s]
//
// Its first line on standard output is "listening on http://ADDR" (-addr with port 0 picks a
// free port). A usage error exits 2 with the usage line (-h lists the flags); an address it
// cannot listen on (a port in use) exits 1, saying what to do.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/internal/demo"
	"github.com/herald-go/herald/websocket"
)

// config is what the flags set.
type config struct {
	maxLength int64
	deflate   bool
	interval  time.Duration // between two events of an event stream
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	var cfg config
	flag.Int64Var(&cfg.maxLength, "max-length", 0, "largest message accepted, in bytes (0 means 64 MiB - 1)")
	flag.BoolVar(&cfg.deflate, "deflate", true, "negotiate permessage-deflate")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "time between two events of an EventSource stream")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: go run ./examples/echo [-addr HOST:PORT] [-max-length N] [-deflate=false] [-interval D]")
		flag.PrintDefaults()
	}
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		fmt.Fprintf(os.Stderr, "echo: unexpected argument %q: everything is a flag\n", flag.Arg(0))
	case cfg.maxLength < 0:
		fmt.Fprintf(os.Stderr, "echo: -max-length must be 0 (the default limit) or more, not %d\n", cfg.maxLength)
	case cfg.interval <= 0:
		fmt.Fprintf(os.Stderr, "echo: -interval must be positive, not %v\n", cfg.interval)
	default:
		if err := run(*addr, cfg); err != nil {
			fmt.Fprintf(os.Stderr, "echo: %v\n", err)
			os.Exit(1)
		}
		return
	}
	flag.Usage()
	os.Exit(2)
}

func run(addr string, cfg config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return demo.ListenError(addr, err)
	}
	reg := &websocket.Registry{}
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv := &http.Server{
		Handler:           newHandler(cfg, reg, streams.Done()),
		ReadHeaderTimeout: 10 * time.Second, // guards the part of the handshake net/http reads
	}
	srv.RegisterOnShutdown(reg.Shutdown)
	srv.RegisterOnShutdown(endStreams) // event streams never end by themselves
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

// newHandler returns the echo server's handler. Event streams end when stop is closed.
func newHandler(cfg config, reg *websocket.Registry, stop <-chan struct{}) http.Handler {
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
			if eventsource.IsEventSource(r) {
				ticks(w, r, cfg.interval, stop)
				return
			}
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

// ticks serves an event stream: "tick N" every interval, with id N, resuming after the
// client's last event id.
func ticks(w http.ResponseWriter, r *http.Request, interval time.Duration, stop <-chan struct{}) {
	es, err := eventsource.New(w, r, &eventsource.Options{
		Retry:        10 * time.Second,
		PingInterval: 15 * time.Second,
		Header:       http.Header{"Access-Control-Allow-Origin": {"*"}},
	})
	if err != nil {
		return
	}
	n, _ := strconv.ParseUint(es.LastEventID(), 10, 64) // not a number: start at 1
	t := time.NewTicker(max(interval, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-es.Done():
			return
		case <-stop:
			_ = es.Close()
			return
		case <-t.C:
			n++
			id := strconv.FormatUint(n, 10)
			if es.Send("tick "+id, eventsource.Event{ID: id}) != nil {
				<-es.Done()
				return
			}
		}
	}
}
