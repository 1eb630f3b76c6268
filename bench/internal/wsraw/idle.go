package wsraw

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DialAll opens n connections, dialers handshakes at a time, calling open(i) for i from 1 to
// n; open closes what it opened when it fails. On the first failure DialAll stops opening,
// closes every connection it has and returns that error.
func DialAll[C interface{ Close() }](n, dialers int, open func(i int) (C, error)) ([]C, error) {
	var (
		mu   sync.Mutex
		cs   = make([]C, 0, n)
		next atomic.Int64
		fail atomic.Pointer[error]
		wg   sync.WaitGroup
	)
	for range min(dialers, n) {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && fail.Load() == nil; i = next.Add(1) {
				c, err := open(int(i))
				if err != nil {
					fail.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				cs = append(cs, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if p := fail.Load(); p != nil {
		for _, c := range cs {
			c.Close()
		}
		return nil, *p
	}
	return cs, nil
}

// Hold holds cs idle, as the load clients' idle mode does. A reader on each connection
// answers pings and notices a close by the server; nothing is sent. Hold prints "open N" to
// stdout, waits until standard input says "stop" or ends, SIGINT or SIGTERM arrives, or hold
// passes, then closes the connections and prints "closed dropped=N", N being how many the
// server closed or broke meanwhile.
func Hold(cs []*Conn, hold time.Duration) {
	var dropped atomic.Int64
	for _, c := range cs {
		go func() {
			for {
				h, err := c.ReadHeader()
				if err == nil && h.Op >= OpClose {
					err = c.Control(h)
				} else if err == nil {
					err = c.Discard(h.Len)
				}
				if err != nil {
					dropped.Add(1)
					return
				}
			}
		}()
	}
	fmt.Printf("open %d\n", len(cs))

	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() && sc.Text() != "stop" {
		}
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case <-done:
	case <-sig:
	case <-time.After(hold):
	}
	d := dropped.Load()
	for _, c := range cs {
		c.Close()
	}
	fmt.Printf("closed dropped=%d\n", d)
}
