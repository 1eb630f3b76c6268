// Command gobwas-tuned is the echo server on github.com/gobwas/ws written the
// fast way its README points to (the low-level API that lets one "reuse I/O
// buffers"): a goroutine per connection, the bufio.Reader that net/http
// already allocated, frame headers read with ws.ReadHeaderBuffer into a
// per-connection scratch, payloads read straight into one per-connection
// buffer and unmasked in place, and the reply header written in front of the
// payload so that each echo is a single Write. After the first message of
// the largest size nothing is allocated per message.
package main

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gobwas/ws"

	"github.com/herald-go/herald/bench/internal/serve"
)

// maxMessage bounds a message, fragments included.
const maxMessage = 1 << 20

// reserve is the room kept in front of the payload for the reply header: an
// unmasked server header is at most 10 bytes.
const reserve = 10

type conn struct {
	nc      net.Conn
	br      *bufio.Reader
	scratch [ws.MaxHeaderSize]byte
	buf     []byte // reply header room, then the message payload
	hdrAt   int    // where the reply header starts in buf
}

// Write lets ws.WriteHeaderBuffer place the reply header right in front of
// the payload.
func (c *conn) Write(p []byte) (int, error) {
	c.hdrAt = reserve - len(p)
	copy(c.buf[c.hdrAt:reserve], p)
	return len(p), nil
}

func (c *conn) serve() {
	defer c.nc.Close()
	var (
		op  ws.OpCode
		n   int // payload bytes of the current message so far
		mid bool
	)
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.scratch[:])
		if err != nil || !h.Masked || h.Rsv != 0 || h.Length > maxMessage-int64(n) {
			return
		}
		if h.OpCode.IsControl() {
			if !c.control(h) {
				return
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && !mid, h.OpCode != ws.OpContinuation && mid:
			return
		case !mid:
			op, n = h.OpCode, 0
		}
		end := reserve + n + int(h.Length)
		if cap(c.buf) < end {
			nb := make([]byte, end, max(end, 2*cap(c.buf)))
			if n > 0 {
				copy(nb[reserve:], c.buf[reserve:reserve+n])
			}
			c.buf = nb
		}
		c.buf = c.buf[:end]
		p := c.buf[reserve+n : end]
		if _, err := io.ReadFull(c.br, p); err != nil {
			return
		}
		ws.Cipher(p, h.Mask, 0)
		n += len(p)
		if mid = !h.Fin; mid {
			continue
		}
		out := ws.Header{Fin: true, OpCode: op, Length: int64(n)}
		if err := ws.WriteHeaderBuffer(c, out, c.scratch[:]); err != nil {
			return
		}
		if _, err := c.nc.Write(c.buf[c.hdrAt:end]); err != nil {
			return
		}
	}
}

// control answers a ping, echoes a close and ignores a pong; it reports
// whether to go on reading. Control frames are rare here, so their payloads
// are allocated.
func (c *conn) control(h ws.Header) bool {
	if h.Length > 125 || !h.Fin {
		return false
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return false
	}
	ws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		return ws.WriteFrame(c.nc, ws.NewPongFrame(p)) == nil
	case ws.OpClose:
		_ = ws.WriteFrame(c.nc, ws.NewCloseFrame(p))
		return false
	}
	return true
}

func main() {
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, rw, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		c := &conn{nc: nc, br: rw.Reader}
		go c.serve()
	}))
}
