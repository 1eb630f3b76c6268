package fanload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// Conn is a connection taken over from the net package: a non-blocking descriptor read by a
// [Poller], and the bytes of a frame or message not yet complete.
type Conn struct {
	// Mask is the masking key of the frames the connection writes (the dialled
	// connection's).
	Mask [4]byte

	fd      int
	op      byte // the data opcode accepted
	frag    bool // whether fragmented messages are accepted
	drain   bool // whether a read goes on while the buffer fills
	max     int
	pending []byte // bytes read but not yet parsed
	msg     []byte // a fragmented message being assembled
	out     []byte
	buf     [4096]byte
}

// Options say what a taken-over connection accepts.
type Options struct {
	// Op is the opcode of the data messages accepted ([wsraw.OpText] or
	// [wsraw.OpBinary]); another data opcode fails the read.
	Op byte
	// Fragments accepts messages in several frames (assembled before they are handled);
	// without it a continuation frame fails the read.
	Fragments bool
	// Max bounds a frame's and a message's size in bytes.
	Max int
	// Drain reads on while a read fills the buffer, rather than going back to the poller
	// after one read.
	Drain bool
}

// TakeOver hands c's socket over to a Conn: it duplicates the descriptor and closes c, which
// takes the socket out of the Go runtime's poller. Nothing may be buffered in c: the load
// clients' servers send nothing unasked before the load starts.
func TakeOver(c *wsraw.Conn, o Options) (*Conn, error) {
	if n := c.Buffered(); n > 0 {
		return nil, fmt.Errorf("%d unread bytes before the load", n)
	}
	f, err := c.NetConn().File()
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, err
	}
	_ = c.NetConn().Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return &Conn{Mask: c.Mask, fd: fd, op: o.Op, frag: o.Fragments, drain: o.Drain, max: o.Max}, nil
}

// Close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT).
func (r *Conn) Close() {
	_ = syscall.SetsockoptLinger(r.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	_ = syscall.Close(r.fd)
}

// ReadAll reads what the socket has and calls handle with each whole data message in it,
// answering pings. The message is valid only during the call.
func (r *Conn) ReadAll(handle func([]byte) error) error {
	for {
		n, err := syscall.Read(r.fd, r.buf[:])
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return nil
		case err != nil:
			return err
		case n == 0:
			return errors.New("the server closed a connection")
		}
		b := r.buf[:n]
		if len(r.pending) > 0 {
			r.pending = append(r.pending, b...)
			b = r.pending
		}
		for {
			used, err := r.frame(b, handle)
			if err != nil {
				return err
			}
			if used == 0 {
				break
			}
			b = b[used:]
		}
		if len(b) > r.max+len(r.buf) {
			return fmt.Errorf("a frame over %d bytes", r.max)
		}
		r.pending = append(r.pending[:0], b...)
		if !r.drain || n < len(r.buf) {
			return nil
		}
	}
}

// frame parses one frame at the start of b and returns how many bytes it took, or 0 if b
// does not hold a whole frame yet.
func (r *Conn) frame(b []byte, handle func([]byte) error) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
		return 0, errors.New("a server frame with RSV bits or a mask")
	}
	h, n := 2, uint64(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil
		}
		h, n = 4, uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, nil
		}
		h, n = 10, binary.BigEndian.Uint64(b[2:])
	}
	if n > uint64(r.max) {
		return 0, fmt.Errorf("a frame of %d bytes", n)
	}
	end := h + int(n)
	if len(b) < end {
		return 0, nil
	}
	p := b[h:end]
	switch {
	case op == wsraw.OpPing:
		r.out = wsraw.AppendFrame(r.out[:0], wsraw.Fin|wsraw.OpPong, p, r.Mask)
		return end, r.Write(r.out)
	case op == wsraw.OpPong:
	case op == wsraw.OpClose:
		return 0, fmt.Errorf("the server closed a connection: %q", p)
	case op == r.op && fin && r.msg == nil:
		return end, handle(p)
	case op == r.op && r.frag && r.msg == nil:
		r.msg = append([]byte{}, p...)
	case op == wsraw.OpContinuation && r.msg != nil:
		r.msg = append(r.msg, p...)
		if len(r.msg) > r.max {
			return 0, fmt.Errorf("a message over %d bytes", r.max)
		}
		if fin {
			m := r.msg
			r.msg = nil
			return end, handle(m)
		}
	default:
		return 0, fmt.Errorf("unexpected frame: opcode %#x, fin %v", op, fin)
	}
	return end, nil
}

// Write writes b whole; the socket is non-blocking, so it waits for room (briefly: the
// benchmarks' messages are small and the socket buffers big), 10 s at most.
func (r *Conn) Write(b []byte) error {
	for deadline := time.Now().Add(10 * time.Second); len(b) > 0; {
		n, err := syscall.Write(r.fd, b)
		if errors.Is(err, syscall.EAGAIN) {
			if time.Now().After(deadline) {
				return errors.New("a write blocked for 10s")
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
