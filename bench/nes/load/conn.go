package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// conn is one client WebSocket connection speaking nes: the socket, a read
// buffer, the message being assembled, and a scratch for outgoing frames.
// One goroutine reads; writes come from that goroutine too, except where a
// caller says otherwise.
type conn struct {
	nc     *net.TCPConn
	br     *bufio.Reader
	hdr    [14]byte
	msg    []byte // the last message read; reused
	out    []byte // the last frame written; reused
	nextID int64  // the next nes message id
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxMessage bounds a message from the server; the benchmark's are under 200 bytes.
const maxMessage = 1 << 20

// mask is the fixed masking key of every client frame. RFC 6455 wants it
// unpredictable, against proxies that cache; there are none on loopback.
var mask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// dial connects to addr and performs the opening handshake for path. It
// offers no extension, so the server cannot compress: both servers are
// measured uncompressed.
func dial(addr, path string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	nc := c.(*net.TCPConn)
	_ = nc.SetDeadline(time.Now().Add(timeout))
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + k +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	sum := sha1.Sum([]byte(k + acceptGUID))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		err = fmt.Errorf("handshake: status %s", resp.Status)
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		err = errors.New("handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		err = fmt.Errorf("handshake: unasked extensions %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &conn{nc: nc, br: br, nextID: 1}, nil
}

// close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT).
func (c *conn) close() {
	_ = c.nc.SetLinger(0)
	_ = c.nc.Close()
}

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// read returns the next whole data message, answering WebSocket pings and
// reporting a close as an error. The slice is valid until the next read.
func (c *conn) read() ([]byte, error) {
	c.msg = c.msg[:0]
	started := false
	for {
		fin, op, n, err := c.readHeader()
		if err != nil {
			return nil, err
		}
		if op >= opClose {
			if err := c.control(op, n); err != nil {
				return nil, err
			}
			continue
		}
		switch {
		case !started && op == opContinuation:
			return nil, errors.New("continuation frame without a message")
		case started && op != opContinuation:
			return nil, errors.New("new message inside a fragmented one")
		case !started && op != opText:
			return nil, fmt.Errorf("opcode %#x: nes sends text", op)
		}
		started = true
		if len(c.msg)+n > maxMessage {
			return nil, fmt.Errorf("message over %d bytes", maxMessage)
		}
		m := len(c.msg)
		c.msg = slices.Grow(c.msg, n)[:m+n]
		if _, err := io.ReadFull(c.br, c.msg[m:]); err != nil {
			return nil, err
		}
		if fin {
			return c.msg, nil
		}
	}
}

// readHeader reads one server frame header; server frames are never masked.
func (c *conn) readHeader() (fin bool, op byte, n int, err error) {
	b := c.hdr[:2]
	if _, err := io.ReadFull(c.br, b); err != nil {
		return false, 0, 0, err
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		return fin, op, 0, errors.New("server set RSV bits (no extension was negotiated)")
	}
	if b[1]&0x80 != 0 {
		return fin, op, 0, errors.New("server frame is masked")
	}
	switch l := b[1] & 0x7f; l {
	case 126:
		if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
			return fin, op, 0, err
		}
		n = int(binary.BigEndian.Uint16(c.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, c.hdr[:8]); err != nil {
			return fin, op, 0, err
		}
		v := binary.BigEndian.Uint64(c.hdr[:8])
		if v > maxMessage {
			return fin, op, 0, fmt.Errorf("frame of %d bytes", v)
		}
		n = int(v)
	default:
		n = int(l)
	}
	return fin, op, n, nil
}

// control handles a control frame whose header was just read.
func (c *conn) control(op byte, n int) error {
	if n > 125 {
		return errors.New("control frame over 125 bytes")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	switch op {
	case opPing:
		_, err := c.nc.Write(appendFrame(nil, opPong, p))
		return err
	case opClose:
		code := 1005
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		return fmt.Errorf("server closed the connection: %d %q", code, p[min(2, len(p)):])
	case opPong:
		return nil
	}
	return fmt.Errorf("unknown control opcode %#x", op)
}

// appendFrame appends a masked client frame around payload to b.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|op, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|op, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|op, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	for i, x := range payload {
		b = append(b, x^mask[i&3])
	}
	return b
}

// send writes one nes message: the JSON text built by body around a fresh
// id, {"type":typ,"id":N,...}. It returns the id.
func (c *conn) send(typ string, body func(b []byte) []byte) (int64, error) {
	id := c.nextID
	c.nextID++
	var js [256]byte
	c.out = appendFrame(c.out[:0], opText, nesMessage(js[:0], typ, id, body))
	_, err := c.nc.Write(c.out)
	return id, err
}

// nesMessage appends {"type":typ,"id":id,...} to j, the rest written by body.
func nesMessage(j []byte, typ string, id int64, body func(b []byte) []byte) []byte {
	j = append(j, `{"type":"`...)
	j = append(j, typ...)
	j = append(j, `","id":`...)
	j = strconv.AppendInt(j, id, 10)
	if body != nil {
		j = body(j)
	}
	return append(j, '}')
}

// hello sends the nes hello and waits for its reply, answering nothing else.
func (c *conn) hello() error {
	id, err := c.send("hello", func(b []byte) []byte { return append(b, `,"version":"2"`...) })
	if err != nil {
		return err
	}
	return c.await("hello", id)
}

// subscribe subscribes to path and waits for the server's confirmation.
func (c *conn) subscribe(path string) error {
	id, err := c.send("sub", func(b []byte) []byte {
		return strconv.AppendQuote(append(b, `,"path":`...), path)
	})
	if err != nil {
		return err
	}
	return c.await("sub", id)
}

// await reads until the reply of type typ with id arrives; it fails on an
// error reply and answers nes pings on the way.
func (c *conn) await(typ string, id int64) error {
	for {
		m, err := c.read()
		if err != nil {
			return err
		}
		t := field(m, `"type":"`)
		if string(t) == "ping" {
			if err := c.pong(); err != nil {
				return err
			}
			continue
		}
		if string(t) != typ {
			return fmt.Errorf("waiting for %s %d, got %.200s", typ, id, m)
		}
		if got, ok := number(m, `"id":`); !ok || got != id {
			return fmt.Errorf("waiting for %s %d, got %.200s", typ, id, m)
		}
		if bytes.Contains(m, []byte(`"statusCode":`)) {
			return fmt.Errorf("%s refused: %.200s", typ, m)
		}
		return nil
	}
}

// pong answers a nes heartbeat ping, as the @hapi/nes client does.
func (c *conn) pong() error {
	_, err := c.send("ping", nil)
	return err
}

// field returns the bytes after key up to the next '"': the value of a JSON
// string field with no escapes, which is all the benchmark's fields are.
// The servers' messages are flat enough that the first match is the field.
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
