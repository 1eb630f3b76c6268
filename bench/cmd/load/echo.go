package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// runEcho is mode echo: see the package comment.
func runEcho(addr, path string, conns, size, depth int, l wsraw.Load) error {
	if conns < 1 || size < 1 || depth < 1 || l.Duration <= 0 {
		return fmt.Errorf("need -conns, -size, -depth and -duration above zero")
	}
	opts := &wsraw.Options{ReadBuffer: max(2*size+64, 4096)}
	cs := make([]*wsraw.Conn, 0, conns)
	for range conns {
		c, err := wsraw.Dial(addr, path, opts)
		if err != nil {
			for _, c := range cs {
				c.Close()
			}
			return err
		}
		cs = append(cs, c)
	}
	return wsraw.Run(cs, l, func(i int, c *wsraw.Conn, n *wsraw.Counter, stop *atomic.Bool) error {
		return echoLoop(c, size, depth, uint64(i), n, stop)
	})
}

// echoLoop keeps depth messages in flight on c until stop is set, checking
// that each echo carries the expected sequence number (in its first 8 bytes,
// when the message has 8) and the expected bytes. Frames are masked once
// when built: per message only the 8 sequence bytes are masked again.
func echoLoop(c *wsraw.Conn, size, depth int, seed uint64, n *wsraw.Counter, stop *atomic.Bool) error {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	fr := wsraw.AppendFrame(nil, wsraw.Fin|wsraw.OpBinary, payload, c.Mask)
	off := len(fr) - size
	seqd := size >= 8
	var seqb [8]byte
	send := func(seq uint64) error {
		if seqd {
			binary.LittleEndian.PutUint64(seqb[:], seq)
			for i, x := range seqb {
				fr[off+i] = x ^ c.Mask[i&3]
			}
		}
		return c.Write(fr)
	}
	var sent, got uint64
	for ; sent < uint64(depth); sent++ {
		if err := send(sent); err != nil {
			return err
		}
	}
	recv := make([]byte, 0, size)
	for !stop.Load() {
		m, err := c.ReadMessage(recv, size)
		if err != nil {
			return err
		}
		recv = m.Payload
		switch {
		case m.Op != wsraw.OpBinary:
			return fmt.Errorf("message opcode %#x, want binary", m.Op)
		case len(recv) != size:
			return fmt.Errorf("echo of %d bytes, sent %d", len(recv), size)
		case seqd && binary.LittleEndian.Uint64(recv) != got:
			return fmt.Errorf("echo %d came back as %d", got, binary.LittleEndian.Uint64(recv))
		case seqd && !bytes.Equal(recv[8:], payload[8:]), !seqd && !bytes.Equal(recv, payload):
			return fmt.Errorf("echo %d differs from what was sent", got)
		}
		got++
		n.Add(1)
		if err := send(sent); err != nil {
			return err
		}
		sent++
	}
	return nil
}
