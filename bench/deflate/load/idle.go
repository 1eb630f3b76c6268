package main

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

// runIdle opens conns connections, each of which echoes one compressed
// document (so that the server has built its compression state for it),
// then holds them idle until told to stop.
func runIdle(addr, path, offer string, conns, dialers int, hold time.Duration) error {
	if conns < 1 || dialers < 1 {
		return fmt.Errorf("need -conns and -dialers above zero")
	}
	docs := makeDocs(numDocs, 1)
	var (
		w    wire
		mu   sync.Mutex
		cs   = make([]*conn, 0, conns)
		next atomic.Int64
		fail atomic.Pointer[error]
		wg   sync.WaitGroup
	)
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			c.close()
		}
		cs = nil
	}
	defer closeAll()
	for range min(dialers, conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(conns) && fail.Load() == nil; i = next.Add(1) {
				c, err := dial(addr, path, offer, &w, 20*time.Second)
				if err == nil {
					mu.Lock()
					cs = append(cs, c)
					mu.Unlock()
					// The codec is dropped after this echo: the client sends
					// nothing more, and 1,000 compressors would cost the
					// client hundreds of MiB.
					err = echoOnce(c, newEncoder(c.neg), newDecoder(c.neg), docs[int(i)%len(docs)])
				}
				if err != nil {
					fail.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := fail.Load(); p != nil {
		return fmt.Errorf("opening %d connections: %w", conns, *p)
	}
	fmt.Printf("negotiated %s\n", cs[0].neg.response)

	// Hold them. Each connection has a reader so that pings get their pongs
	// and a close by the server is noticed; an idle connection sends nothing.
	var dropped atomic.Int64
	for _, c := range cs {
		go func() {
			for {
				h, err := c.readHeader()
				if err == nil && h.op >= opClose {
					err = c.control(h)
				} else if err == nil {
					_, err = c.br.Discard(h.len)
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
	closeAll()
	fmt.Printf("closed dropped=%d\n", d)
	return nil
}
