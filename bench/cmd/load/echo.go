package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// counter is one connection's echoed-message count, alone on its cache line.
type counter struct {
	n atomic.Int64
	_ [56]byte
}

func runEcho(addr, path string, conns, size, depth int, warmup, duration time.Duration, count int64) error {
	if conns < 1 || size < 1 || depth < 1 || duration <= 0 {
		return fmt.Errorf("need -conns, -size, -depth and -duration above zero")
	}
	cs := make([]*conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for range conns {
		c, err := dial(addr, path, max(2*size+64, 4096), 10*time.Second)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
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
			if err := echoLoop(c, size, depth, uint64(i), &counters[i], &stop); err != nil && !stop.Load() {
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
	n0, t0, cpu0 := total(), time.Now(), cpuSeconds()
	fmt.Println("start")
	window := time.NewTimer(duration)
	defer window.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-errc:
			return end(err)
		case <-window.C:
			break wait
		case <-tick.C:
			if count > 0 && total()-n0 >= count {
				break wait
			}
		}
	}
	n1, t1, cpu1 := total(), time.Now(), cpuSeconds()
	fmt.Printf("stop msgs=%d secs=%.6f cpu=%.6f\n", n1-n0, t1.Sub(t0).Seconds(), cpu1-cpu0)
	return end(nil)
}

// echoLoop keeps depth messages in flight on c until stop is set, checking
// that each echo carries the expected sequence number (in its first 8 bytes,
// when the message has 8) and the expected bytes.
func echoLoop(c *conn, size, depth int, seed uint64, n *counter, stop *atomic.Bool) error {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	mask := [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
	fr := frame(opBinary, payload, mask)
	off := len(fr) - size
	seqd := size >= 8
	var seqb [8]byte
	send := func(seq uint64) error {
		if seqd {
			binary.LittleEndian.PutUint64(seqb[:], seq)
			for i, x := range seqb {
				fr[off+i] = x ^ mask[i&3]
			}
		}
		_, err := c.nc.Write(fr)
		return err
	}
	var sent, got uint64
	for ; sent < uint64(depth); sent++ {
		if err := send(sent); err != nil {
			return err
		}
	}
	recv := make([]byte, size)
	for !stop.Load() {
		m, err := c.readMessage(recv)
		if err != nil {
			return err
		}
		switch {
		case m != size:
			return fmt.Errorf("echo of %d bytes, sent %d", m, size)
		case seqd && binary.LittleEndian.Uint64(recv) != got:
			return fmt.Errorf("echo %d came back as %d", got, binary.LittleEndian.Uint64(recv))
		case seqd && !bytes.Equal(recv[8:], payload[8:]), !seqd && !bytes.Equal(recv, payload):
			return fmt.Errorf("echo %d differs from what was sent", got)
		}
		got++
		n.n.Add(1)
		if err := send(sent); err != nil {
			return err
		}
		sent++
	}
	return nil
}

// readMessage reads one binary message into buf, whose length bounds it, and
// returns its length. It answers pings met on the way.
func (c *conn) readMessage(buf []byte) (int, error) {
	n := 0
	first := true
	for {
		h, err := c.readHeader()
		if err != nil {
			return 0, err
		}
		if h.op >= opClose {
			if err := c.control(h); err != nil {
				return 0, err
			}
			continue
		}
		switch {
		case first && h.op != opBinary:
			return 0, fmt.Errorf("message opcode %#x, want binary", h.op)
		case !first && h.op != opContinuation:
			return 0, fmt.Errorf("opcode %#x inside a fragmented message", h.op)
		case n+h.length > len(buf):
			return 0, fmt.Errorf("echo longer than the %d bytes sent", len(buf))
		}
		if _, err := io.ReadFull(c.br, buf[n:n+h.length]); err != nil {
			return 0, err
		}
		n += h.length
		if h.fin {
			return n, nil
		}
		first = false
	}
}
