package main

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/bench/internal/fanload"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

// runRequests is mode requests: see the package comment.
func runRequests(addr, path string, conns, depth int, l wsraw.Load, timeout time.Duration) error {
	return requests(conns, depth, l, func() (*conn, error) { return dial(addr, path, timeout) })
}

// requests opens conns connections with open, one at a time, says hello on each, and runs
// the requests load on them (requestLoop), printing the stop line.
func requests[C nesConn](conns, depth int, l wsraw.Load, open func() (C, error)) error {
	cs, err := wsraw.DialAll(conns, 1, func(int) (C, error) {
		c, err := open()
		if err != nil {
			return c, err
		}
		if err := hello(c); err != nil {
			c.Close()
			return c, fmt.Errorf("hello: %w", err)
		}
		return c, nil
	})
	if err != nil {
		return err
	}
	l.Stop = func(w wsraw.Window) { fmt.Printf("stop reqs=%d secs=%g cpu=%g\n", w.Msgs, w.Secs, w.CPU) }
	return wsraw.Run(cs, l, func(_ int, c C, n *wsraw.Counter, stop *atomic.Bool) error {
		return requestLoop(c, depth, n, stop)
	})
}

var (
	getHello = func(b []byte) []byte { return append(b, `,"method":"GET","path":"/h"`...) }
	okReply  = []byte(`"statusCode":200`)
	okBody   = []byte(`"payload":"world!"`)
)

// requestLoop keeps depth requests in flight on c until stop is set,
// counting and checking every reply. Replies may come back in any order.
func requestLoop(c nesConn, depth int, replies *wsraw.Counter, stop *atomic.Bool) error {
	inFlight := make([]int64, 0, depth)
	for range depth {
		id, err := c.send("request", getHello)
		if err != nil {
			return err
		}
		inFlight = append(inFlight, id)
	}
	for {
		m, err := c.read()
		if err != nil {
			if stop.Load() {
				return nil
			}
			return err
		}
		switch string(fanload.Field(m, `"type":"`)) {
		case "request":
			id, _ := fanload.Number(m, `"id":`)
			i := slices.Index(inFlight, id)
			if i < 0 || !bytes.Contains(m, okReply) || !bytes.Contains(m, okBody) {
				return fmt.Errorf("unexpected reply %.200s", m)
			}
			inFlight = slices.Delete(inFlight, i, i+1)
			replies.Add(1)
			if stop.Load() {
				return nil
			}
			id, err := c.send("request", getHello)
			if err != nil {
				return err
			}
			inFlight = append(inFlight, id)
		case "ping":
			if err := pong(c); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected message %.200s", m)
		}
	}
}
