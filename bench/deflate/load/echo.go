package main

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// counter is one connection's echoed-message count, alone on its cache line.
type counter struct {
	n atomic.Int64
	_ [56]byte
}

func runEcho(addr, path, offer string, conns int, warmup, duration time.Duration) error {
	if conns < 1 || duration <= 0 {
		return fmt.Errorf("need -conns and -duration above zero")
	}
	docs := makeDocs(numDocs, 1)
	var w wire
	cs := make([]*conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for range conns {
		c, err := dial(addr, path, offer, &w, 10*time.Second)
		if err != nil {
			return err
		}
		if len(cs) > 0 && c.neg.response != cs[0].neg.response {
			return fmt.Errorf("the server answered %q, then %q", cs[0].neg.response, c.neg.response)
		}
		cs = append(cs, c)
	}
	fmt.Printf("negotiated %s\n", cs[0].neg.response)
	counters := make([]counter, conns)
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	errc := make(chan error, conns)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoLoop(c, docs, i, &counters[i], &stop); err != nil && !stop.Load() {
				errc <- err
			}
		}()
	}
	total := func() (n int64) {
		for i := range counters {
			n += counters[i].n.Load()
		}
		return n
	}
	end := func(err error) error {
		stop.Store(true)
		for _, c := range cs {
			c.close()
		}
		cs = nil
		wg.Wait()
		return err
	}

	select {
	case err := <-errc:
		return end(err)
	case <-time.After(warmup):
	}
	n0, t0, cpu0, up0, down0 := total(), time.Now(), cpuSeconds(), w.up.Load(), w.down.Load()
	fmt.Println("start")
	select {
	case err := <-errc:
		return end(err)
	case <-time.After(duration):
	}
	n1, t1, cpu1, up1, down1 := total(), time.Now(), cpuSeconds(), w.up.Load(), w.down.Load()
	fmt.Printf("stop msgs=%d secs=%.6f cpu=%.6f up=%d down=%d\n", n1-n0, t1.Sub(t0).Seconds(), cpu1-cpu0, up1-up0, down1-down0)
	return end(nil)
}

// numDocs is how many different documents the clients cycle through.
const numDocs = 64

// echoLoop sends documents one at a time on c, each after the echo of the
// one before, until stop is set; it checks every echo against what was sent.
// Connection i sends documents i, i+1, ... (mod numDocs).
func echoLoop(c *conn, docs [][]byte, i int, n *counter, stop *atomic.Bool) error {
	enc, dec := newEncoder(c.neg), newDecoder(c.neg)
	for seq := i; !stop.Load(); seq++ {
		if err := echoOnce(c, enc, dec, docs[seq%len(docs)]); err != nil {
			return err
		}
		n.n.Add(1)
	}
	return nil
}

// echoOnce sends doc compressed and checks that what comes back inflates to
// doc.
func echoOnce(c *conn, enc *encoder, dec *decoder, doc []byte) error {
	z, err := enc.encode(doc)
	if err != nil {
		return err
	}
	if err := c.send(z, true); err != nil {
		return err
	}
	p, compressed, err := c.readMessage(2 * docSize)
	if err != nil {
		return err
	}
	if compressed {
		if p, err = dec.decode(p, docSize); err != nil {
			return err
		}
	}
	if !bytes.Equal(p, doc) {
		return fmt.Errorf("echo of %d bytes differs from the %d sent", len(p), len(doc))
	}
	return nil
}
