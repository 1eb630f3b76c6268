package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// maxMessage bounds a message from a server; the benchmark's are under 200 bytes.
const maxMessage = 1 << 20

// conn is a connection in its blocking phase (handshake, hello, subscription), before the
// epoll loop takes it over.
type conn struct {
	*wsraw.Conn
	msg    []byte
	out    []byte
	nextID int64
}

// dial opens a WebSocket to addr, offering no extension (so nothing is compressed).
func dial(addr, path string, timeout time.Duration) (*conn, error) {
	c, err := wsraw.Dial(addr, path, &wsraw.Options{Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, nextID: 1}, nil
}

// send writes the nes message {"type":typ,"id":N,...}, the rest written by body, and returns N.
func (c *conn) send(typ string, body func([]byte) []byte) (int64, error) {
	id := c.nextID
	c.nextID++
	c.out = appendMessage(c.out[:0], c.Mask, typ, id, body)
	return id, c.Write(c.out)
}

// appendMessage appends a masked text frame holding {"type":typ,"id":id,...} to b.
func appendMessage(b []byte, mask [4]byte, typ string, id int64, body func([]byte) []byte) []byte {
	var js [256]byte
	j := append(js[:0], `{"type":"`...)
	j = append(j, typ...)
	j = append(j, `","id":`...)
	j = strconv.AppendInt(j, id, 10)
	if body != nil {
		j = body(j)
	}
	return wsraw.AppendFrame(b, wsraw.Fin|wsraw.OpText, append(j, '}'), mask)
}

// call sends a nes message and waits (reading with a deadline) for its reply, answering
// heartbeat pings meanwhile; an error reply fails.
func (c *conn) call(typ string, body func([]byte) []byte, timeout time.Duration) error {
	id, err := c.send(typ, body)
	if err != nil {
		return err
	}
	_ = c.NetConn().SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = c.NetConn().SetReadDeadline(time.Time{}) }()
	for {
		m, err := c.ReadMessage(c.msg, maxMessage)
		c.msg = m.Payload
		if err != nil {
			return fmt.Errorf("waiting for the %s reply: %w", typ, err)
		}
		t := field(m.Payload, `"type":"`)
		if string(t) == "ping" {
			if _, err := c.send("ping", nil); err != nil {
				return err
			}
			continue
		}
		if got, ok := number(m.Payload, `"id":`); string(t) != typ || !ok || got != id ||
			bytes.Contains(m.Payload, []byte(`"statusCode":`)) {
			return fmt.Errorf("waiting for %s %d, got %.200s", typ, id, m.Payload)
		}
		return nil
	}
}

// field returns the bytes after key up to the next '"': a JSON string field without escapes.
func field(m []byte, key string) []byte {
	i := bytes.Index(m, []byte(key))
	if i < 0 {
		return nil
	}
	v := m[i+len(key):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}

// number returns the non-negative integer after key.
func number(m []byte, key string) (int64, bool) {
	i := bytes.Index(m, []byte(key))
	if i < 0 {
		return 0, false
	}
	var n int64
	d := 0
	for _, x := range m[i+len(key):] {
		if x < '0' || x > '9' {
			break
		}
		n = n*10 + int64(x-'0')
		d++
	}
	return n, d > 0 && d < 19
}

// rawConn is a connection taken over from the net package: a non-blocking descriptor read by
// the epoll loop, and the bytes of a frame not yet complete.
type rawConn struct {
	fd        int
	pending   []byte
	frag      []byte
	out       []byte
	mask      [4]byte
	nextID    int64
	lastSeq   int64
	publisher bool
	buf       [4096]byte
}

// raw hands c's socket over to a rawConn (a duplicated descriptor; c is closed, which takes
// the socket out of the Go runtime's poller). Nothing may be buffered in c.
func (c *conn) raw() (*rawConn, error) {
	if n := c.Buffered(); n > 0 {
		return nil, fmt.Errorf("%d unread bytes before the publishes", n)
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
	return &rawConn{fd: fd, mask: c.Mask, nextID: c.nextID}, nil
}

// close drops the connection at once (SO_LINGER 0).
func (r *rawConn) close() {
	_ = syscall.SetsockoptLinger(r.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	_ = syscall.Close(r.fd)
}

// readAll reads what the socket has and calls handle for each whole message in it.
func (r *rawConn) readAll(handle func([]byte) error) error {
	n, err := syscall.Read(r.fd, r.buf[:])
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return nil
	case err != nil:
		return err
	case n == 0:
		return errors.New("a server closed a connection")
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
	if len(b) > maxMessage {
		return fmt.Errorf("frame over %d bytes", maxMessage)
	}
	r.pending = append(r.pending[:0], b...)
	return nil
}

// frame parses one frame at the start of b and returns how many bytes it took, or 0 when b
// does not hold a whole frame yet.
func (r *rawConn) frame(b []byte, handle func([]byte) error) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
		return 0, errors.New("server frame with RSV bits or a mask")
	}
	h, n := 2, int(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil
		}
		h, n = 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > maxMessage {
			return 0, fmt.Errorf("frame of %d bytes", v)
		}
		h, n = 10, int(v)
	}
	if len(b) < h+n {
		return 0, nil
	}
	p := b[h : h+n]
	switch {
	case op == wsraw.OpPing:
		return h + n, r.write(wsraw.AppendFrame(r.out[:0], wsraw.Fin|wsraw.OpPong, p, r.mask))
	case op == wsraw.OpPong:
	case op == wsraw.OpClose:
		return 0, fmt.Errorf("a server closed a connection: %q", p)
	case op == wsraw.OpText && fin && r.frag == nil:
		return h + n, handle(p)
	case op == wsraw.OpText && r.frag == nil:
		r.frag = append([]byte{}, p...)
	case op == wsraw.OpContinuation && r.frag != nil:
		r.frag = append(r.frag, p...)
		if len(r.frag) > maxMessage {
			return 0, fmt.Errorf("message over %d bytes", maxMessage)
		}
		if fin {
			m := r.frag
			r.frag = nil
			return h + n, handle(m)
		}
	default:
		return 0, fmt.Errorf("unexpected frame: opcode %#x, fin %v", op, fin)
	}
	return h + n, nil
}

// send writes one nes message and returns its id.
func (r *rawConn) send(typ string, body func([]byte) []byte) (int64, error) {
	id := r.nextID
	r.nextID++
	r.out = appendMessage(r.out[:0], r.mask, typ, id, body)
	return id, r.write(r.out)
}

// write writes b whole, waiting briefly for room in the socket.
func (r *rawConn) write(b []byte) error {
	for deadline := time.Now().Add(10 * time.Second); len(b) > 0; {
		n, err := syscall.Write(r.fd, b)
		if errors.Is(err, syscall.EAGAIN) {
			if time.Now().After(deadline) {
				return errors.New("write blocked for 10s")
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
