package main

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// runRequests is mode requests: see the package comment.
func runRequests(addr, path string, conns, depth int, warmup, duration, timeout time.Duration) error {
	cs := make([]*conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for range conns {
		c, err := dial(addr, path, timeout)
		if err != nil {
			return err
		}
		cs = append(cs, c)
		if err := c.hello(); err != nil {
			return fmt.Errorf("hello: %w", err)
		}
	}

	var replies atomic.Int64
	var stop atomic.Bool
	errc := make(chan error, conns)
	for _, c := range cs {
		go func() { errc <- c.requestLoop(depth, &replies, &stop) }()
	}
	// wait sleeps for d unless a connection fails first.
	wait := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case err := <-errc:
			if err == nil {
				err = fmt.Errorf("a connection stopped early")
			}
			return err
		case <-t.C:
			return nil
		}
	}
	if err := wait(warmup); err != nil {
		return err
	}
	n0, t0, cpu0 := replies.Load(), time.Now(), cpuSeconds()
	fmt.Println("start")
	if err := wait(duration); err != nil {
		return err
	}
	n1, t1, cpu1 := replies.Load(), time.Now(), cpuSeconds()
	stop.Store(true)
	fmt.Printf("stop reqs=%d secs=%g cpu=%g\n", n1-n0, t1.Sub(t0).Seconds(), cpu1-cpu0)
	return nil
}

var (
	getHello = func(b []byte) []byte { return append(b, `,"method":"GET","path":"/h"`...) }
	okReply  = []byte(`"statusCode":200`)
	okBody   = []byte(`"payload":"world!"`)
)

// requestLoop keeps depth requests in flight on c until stop is set,
// counting and checking every reply. Replies may come back in any order.
func (c *conn) requestLoop(depth int, replies *atomic.Int64, stop *atomic.Bool) error {
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
		switch string(field(m, `"type":"`)) {
		case "request":
			id, _ := number(m, `"id":`)
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
			if err := c.pong(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected message %.200s", m)
		}
	}
}
