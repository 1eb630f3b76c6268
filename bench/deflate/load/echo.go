package main

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// numDocs is how many different documents the clients cycle through.
const numDocs = 64

// runEcho is mode echo: see the package comment.
func runEcho(addr, path, offer string, conns int, warmup, duration time.Duration) error {
	if conns < 1 || duration <= 0 {
		return fmt.Errorf("need -conns and -duration above zero")
	}
	docs := makeDocs(numDocs)
	var w wsraw.Wire
	cs := make([]*conn, 0, conns)
	closeAll := func() {
		for _, c := range cs {
			c.Close()
		}
	}
	for range conns {
		c, err := dial(addr, path, offer, &w, 10*time.Second)
		if err == nil && len(cs) > 0 && c.neg.response != cs[0].neg.response {
			c.Close()
			err = fmt.Errorf("the server answered %q, then %q", cs[0].neg.response, c.neg.response)
		}
		if err != nil {
			closeAll()
			return err
		}
		cs = append(cs, c)
	}
	fmt.Printf("negotiated %s\n", cs[0].neg.response)
	l := wsraw.Load{Warmup: warmup, Duration: duration, Wire: &w, Stop: func(w wsraw.Window) {
		fmt.Printf("stop msgs=%d secs=%.6f cpu=%.6f up=%d down=%d\n", w.Msgs, w.Secs, w.CPU, w.Up, w.Down)
	}}
	return wsraw.Run(cs, l, func(i int, c *conn, n *wsraw.Counter, stop *atomic.Bool) error {
		return echoLoop(c, docs, i, n, stop)
	})
}

// runIdle is mode idle: it opens conns connections, each of which echoes
// one compressed document (so that the server has built its compression
// state for it), then holds them idle until told to stop.
func runIdle(addr, path, offer string, conns, dialers int, hold time.Duration) error {
	if conns < 1 || dialers < 1 {
		return fmt.Errorf("need -conns and -dialers above zero")
	}
	docs := makeDocs(numDocs)
	var w wsraw.Wire
	cs, err := wsraw.DialAll(conns, dialers, func(i int) (*wsraw.Conn, error) {
		c, err := dial(addr, path, offer, &w, 20*time.Second)
		if err != nil {
			return nil, err
		}
		// The codec is dropped after this echo: the client sends nothing
		// more, and 1,000 compressors would cost the client hundreds of MiB.
		if err := echoOnce(c, newEncoder(c.neg), newDecoder(c.neg), docs[i%len(docs)]); err != nil {
			c.Close()
			return nil, err
		}
		return c.Conn, nil
	})
	if err != nil {
		return fmt.Errorf("opening %d connections: %w", conns, err)
	}
	fmt.Printf("negotiated %s\n", cs[0].Extensions())
	wsraw.Hold(cs, hold)
	return nil
}

// echoLoop sends documents one at a time on c, each after the echo of the
// one before, until stop is set; it checks every echo against what was sent.
// Connection i sends documents i, i+1, ... (mod numDocs).
func echoLoop(c *conn, docs [][]byte, i int, n *wsraw.Counter, stop *atomic.Bool) error {
	enc, dec := newEncoder(c.neg), newDecoder(c.neg)
	for seq := i; !stop.Load(); seq++ {
		if err := echoOnce(c, enc, dec, docs[seq%len(docs)]); err != nil {
			return err
		}
		n.Add(1)
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
