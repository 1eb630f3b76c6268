package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/websocket"
)

// heraldConn is one connection of herald's Go client (package client): a
// Client, which is one connection to the server.
type heraldConn struct{ *client.Client }

// Close closes the client, for wsraw.Run; it waits for the client's goroutines.
func (c heraldConn) Close() { _ = c.Client.Close() }

// runHeraldRequests is mode requests with -client herald: the same load as
// runRequests, generated with herald's Go client instead of raw frames. Each
// of the conns connections is a client.Client, connected (hello answered)
// before the warm-up; depth goroutines per client each loop on
// Client.Request(ctx, "/h") and check every response. The client runs with
// its defaults (a 30 s Options.Timeout on every request, reconnection,
// the server's heartbeat watched and answered) but three: it speaks over
// WebSocket only (no fallback to an event stream or long-polling, which
// would measure another transport); it offers no WebSocket extension, as the
// raw client does, so the server does the same work for both; and it
// connects directly whatever the environment's proxy variables say.
func runHeraldRequests(addr, path string, conns, depth int, l wsraw.Load, timeout time.Duration) error {
	url := "ws://" + addr + path
	opts := &client.Options{
		Transports:     []string{client.TransportWebSocket},
		Dial:           &websocket.DialOptions{Extensions: []websocket.Extension{}, Proxy: websocket.NoProxy},
		ConnectTimeout: timeout,
	}
	cs, err := wsraw.DialAll(conns, 1, func(int) (heraldConn, error) {
		c, err := client.New(url, opts)
		if err != nil {
			return heraldConn{}, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			_ = c.Close()
			return heraldConn{}, fmt.Errorf("connect: %w", err)
		}
		if t := c.Transport(); t != client.TransportWebSocket {
			_ = c.Close()
			return heraldConn{}, fmt.Errorf("connected over %q, not %q", t, client.TransportWebSocket)
		}
		return heraldConn{c}, nil
	})
	if err != nil {
		return err
	}
	l.Stop = func(w wsraw.Window) { fmt.Printf("stop reqs=%d secs=%g cpu=%g\n", w.Msgs, w.Secs, w.CPU) }
	return wsraw.Run(cs, l, func(_ int, c heraldConn, n *wsraw.Counter, stop *atomic.Bool) error {
		return heraldLoop(c.Client, depth, n, stop)
	})
}

// heraldLoop runs depth goroutines on c, each sending a request as soon as
// its last one was answered, until stop is set or one of them fails; it
// returns the first error seen before stop, or nil.
func heraldLoop(c *client.Client, depth int, replies *wsraw.Counter, stop *atomic.Bool) error {
	var (
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	for range depth {
		wg.Go(func() {
			ctx := context.Background()
			for !stop.Load() && first.Load() == nil {
				res, err := c.Request(ctx, "/h")
				if err == nil {
					err = checkResponse(res)
				}
				if err != nil {
					if !stop.Load() {
						first.CompareAndSwap(nil, &err)
					}
					return
				}
				replies.Add(1)
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// checkResponse checks a response to GET /h: status 200, payload "world!".
func checkResponse(res *client.Response) error {
	if res.StatusCode != 200 || string(res.Payload) != `"world!"` {
		return fmt.Errorf("unexpected response: status %d, payload %.200s", res.StatusCode, res.Payload)
	}
	return nil
}
