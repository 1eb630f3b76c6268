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
	"strings"
	"sync/atomic"
	"time"
)

// wire counts the bytes a connection moved through its socket, both ways.
type wire struct {
	up, down atomic.Int64
}

// countingConn is a net.Conn's reading side that counts what it read.
type countingConn struct {
	*net.TCPConn
	w *wire
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.w.down.Add(int64(n))
	return n, err
}

// conn is one client WebSocket connection with permessage-deflate
// negotiated: the socket, a read buffer, the codec the response implies and
// scratch buffers.
type conn struct {
	nc    *net.TCPConn
	br    *bufio.Reader
	w     *wire
	neg   negotiated
	mask  [4]byte
	hdr   [14]byte
	frame []byte // the outgoing frame, reused
	in    []byte // the incoming message's payload, reused
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dial connects to addr, offers the extension header offer, and checks the
// server accepted permessage-deflate. Socket bytes are counted in w from the
// first byte of the handshake.
func dial(addr, path, offer string, w *wire, timeout time.Duration) (*conn, error) {
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
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: " + offer + "\r\n\r\n"
	n, err := io.WriteString(nc, req)
	w.up.Add(int64(n))
	if err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(countingConn{nc, w}, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	sum := sha1.Sum([]byte(k + acceptGUID))
	want := base64.StdEncoding.EncodeToString(sum[:])
	var neg negotiated
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		err = fmt.Errorf("handshake: status %s", resp.Status)
	case resp.Header.Get("Sec-WebSocket-Accept") != want:
		err = errors.New("handshake: wrong Sec-WebSocket-Accept")
	default:
		neg, err = negotiate(offer, strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", "))
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	cn := &conn{nc: nc, br: br, w: w, neg: neg}
	_, _ = rand.Read(cn.mask[:])
	return cn, nil
}

// close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT).
func (c *conn) close() {
	_ = c.nc.SetLinger(0)
	_ = c.nc.Close()
}

func (c *conn) write(p []byte) error {
	n, err := c.nc.Write(p)
	c.w.up.Add(int64(n))
	return err
}

const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// send writes one text message as a single masked frame, with RSV1 set
// when payload is compressed.
func (c *conn) send(payload []byte, compressed bool) error {
	b0 := byte(0x80 | opText)
	if compressed {
		b0 |= 0x40
	}
	c.frame = appendFrame(c.frame[:0], b0, payload, c.mask)
	return c.write(c.frame)
}

func appendFrame(b []byte, b0 byte, payload []byte, mask [4]byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, b0, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	off := len(b)
	b = append(b, payload...)
	m := binary.LittleEndian.Uint32(mask[:])
	m64 := uint64(m) | uint64(m)<<32
	p := b[off:]
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^m64)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= mask[i&3]
	}
	return b
}

// frameHeader is a frame header from the server.
type frameHeader struct {
	fin  bool
	rsv1 bool
	op   byte
	len  int
}

func (c *conn) readHeader() (frameHeader, error) {
	b := c.hdr[:2]
	if _, err := io.ReadFull(c.br, b); err != nil {
		return frameHeader{}, err
	}
	h := frameHeader{fin: b[0]&0x80 != 0, rsv1: b[0]&0x40 != 0, op: b[0] & 0x0f}
	if b[0]&0x30 != 0 {
		return h, errors.New("server set RSV2 or RSV3")
	}
	if b[1]&0x80 != 0 {
		return h, errors.New("server frame is masked")
	}
	switch l := b[1] & 0x7f; l {
	case 126:
		if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
			return h, err
		}
		h.len = int(binary.BigEndian.Uint16(c.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, c.hdr[:8]); err != nil {
			return h, err
		}
		n := binary.BigEndian.Uint64(c.hdr[:8])
		if n > 1<<24 {
			return h, fmt.Errorf("frame of %d bytes", n)
		}
		h.len = int(n)
	default:
		h.len = int(l)
	}
	return h, nil
}

// control handles a control frame whose header was just read: it answers a
// ping and reports a close as an error.
func (c *conn) control(h frameHeader) error {
	if h.len > 125 || !h.fin {
		return errors.New("control frame over 125 bytes or fragmented")
	}
	p := make([]byte, h.len)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	switch h.op {
	case opPing:
		return c.write(appendFrame(nil, 0x80|opPong, p, c.mask))
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

// readMessage reads one text message's payload (fragments joined) into
// c.in, up to max bytes, answering pings met on the way, and reports
// whether it is compressed.
func (c *conn) readMessage(max int) ([]byte, bool, error) {
	c.in = c.in[:0]
	first, compressed := true, false
	for {
		h, err := c.readHeader()
		if err != nil {
			return nil, false, err
		}
		if h.op >= opClose {
			if err := c.control(h); err != nil {
				return nil, false, err
			}
			continue
		}
		switch {
		case first && h.op != opText:
			return nil, false, fmt.Errorf("message opcode %#x, want text", h.op)
		case !first && h.op != opContinuation:
			return nil, false, fmt.Errorf("opcode %#x inside a fragmented message", h.op)
		case !first && h.rsv1:
			return nil, false, errors.New("RSV1 on a continuation frame")
		case len(c.in)+h.len > max:
			return nil, false, fmt.Errorf("message over %d bytes", max)
		}
		if first {
			compressed = h.rsv1
		}
		n := len(c.in)
		c.in = append(c.in, make([]byte, h.len)...)
		if _, err := io.ReadFull(c.br, c.in[n:]); err != nil {
			return nil, false, err
		}
		if h.fin {
			return c.in, compressed, nil
		}
		first = false
	}
}
