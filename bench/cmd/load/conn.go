package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// conn is one client WebSocket connection: the socket, a read buffer, and a
// scratch for frame headers.
type conn struct {
	nc  *net.TCPConn
	br  *bufio.Reader
	hdr [14]byte
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dial connects to addr and performs the opening handshake for path. rbuf
// is the size of the read buffer kept after the handshake.
func dial(addr, path string, rbuf int, timeout time.Duration) (*conn, error) {
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
	br := bufio.NewReaderSize(nc, rbuf)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	sum := sha1.Sum([]byte(k + acceptGUID))
	want := base64.StdEncoding.EncodeToString(sum[:])
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		err = fmt.Errorf("handshake: status %s", resp.Status)
	case resp.Header.Get("Sec-WebSocket-Accept") != want:
		err = errors.New("handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		err = fmt.Errorf("handshake: unasked extensions %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &conn{nc: nc, br: br}, nil
}

// close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT).
func (c *conn) close() {
	_ = c.nc.SetLinger(0)
	_ = c.nc.Close()
}

const (
	opContinuation = 0x0
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// frameHeader is a frame header from the server.
type frameHeader struct {
	fin    bool
	op     byte
	length int
}

// readHeader reads one server frame header; server frames are never masked.
func (c *conn) readHeader() (frameHeader, error) {
	b := c.hdr[:2]
	if _, err := io.ReadFull(c.br, b); err != nil {
		return frameHeader{}, err
	}
	h := frameHeader{fin: b[0]&0x80 != 0, op: b[0] & 0x0f}
	if b[0]&0x70 != 0 {
		return h, errors.New("server set RSV bits")
	}
	if b[1]&0x80 != 0 {
		return h, errors.New("server frame is masked")
	}
	switch l := b[1] & 0x7f; l {
	case 126:
		if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
			return h, err
		}
		h.length = int(binary.BigEndian.Uint16(c.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, c.hdr[:8]); err != nil {
			return h, err
		}
		n := binary.BigEndian.Uint64(c.hdr[:8])
		if n > 1<<30 {
			return h, fmt.Errorf("frame of %d bytes", n)
		}
		h.length = int(n)
	default:
		h.length = int(l)
	}
	return h, nil
}

// frame builds a masked client frame around payload, with a fixed mask.
func frame(op byte, payload []byte, mask [4]byte) []byte {
	n := len(payload)
	var b []byte
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

// control handles a control frame whose header was just read: it answers a
// ping and reports a close as an error.
func (c *conn) control(h frameHeader) error {
	if h.length > 125 {
		return errors.New("control frame over 125 bytes")
	}
	p := make([]byte, h.length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	switch h.op {
	case opPing:
		_, err := c.nc.Write(frame(opPong, p, [4]byte{1, 2, 3, 4}))
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
	return fmt.Errorf("unknown control opcode %#x", h.op)
}
