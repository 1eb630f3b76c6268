package wsraw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Opcodes, and the bits of a frame header's first byte.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xa

	Fin  = 0x80 // the last frame of a message
	RSV1 = 0x40 // a compressed message's first frame (permessage-deflate)
)

// maxFrame bounds a server frame's payload, so that a length read from the wire always
// fits an int; callers bound messages further.
const maxFrame = 1 << 30

// Header is a frame header from the server.
type Header struct {
	Fin  bool
	RSV1 bool
	Op   byte
	Len  int // payload length
}

// ReadHeader reads one server frame header. Server frames are never masked, never set RSV2
// or RSV3, and set RSV1 only where an extension was offered.
func (c *Conn) ReadHeader() (Header, error) {
	b := c.hdr[:2]
	if _, err := io.ReadFull(c.br, b); err != nil {
		return Header{}, err
	}
	h := Header{Fin: b[0]&Fin != 0, RSV1: b[0]&RSV1 != 0, Op: b[0] & 0x0f}
	switch {
	case b[0]&0x30 != 0, h.RSV1 && !c.rsv1:
		return h, errors.New("server set RSV bits that no extension allows")
	case b[1]&0x80 != 0:
		return h, errors.New("server frame is masked")
	}
	switch l := b[1] & 0x7f; l {
	case 126:
		if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
			return h, err
		}
		h.Len = int(binary.BigEndian.Uint16(c.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, c.hdr[:8]); err != nil {
			return h, err
		}
		n := binary.BigEndian.Uint64(c.hdr[:8])
		if n > maxFrame {
			return h, fmt.Errorf("frame of %d bytes", n)
		}
		h.Len = int(n)
	default:
		h.Len = int(l)
	}
	return h, nil
}

// AppendFrame appends a masked client frame around payload to b: first is the header's first
// byte (Fin, RSV1 and the opcode), mask the masking key.
func AppendFrame(b []byte, first byte, payload []byte, mask [4]byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, first, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, first, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, first, 0x80|127)
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

// Control handles a control frame whose header h was just read: it answers a ping with a
// pong, ignores a pong, and reports a close as an error.
func (c *Conn) Control(h Header) error {
	if h.Len > 125 || !h.Fin {
		return errors.New("control frame over 125 bytes or fragmented")
	}
	p := make([]byte, h.Len)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	switch h.Op {
	case OpPing:
		return c.Write(AppendFrame(nil, Fin|OpPong, p, c.Mask))
	case OpClose:
		code := 1005
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		return fmt.Errorf("server closed the connection: %d %q", code, p[min(2, len(p)):])
	case OpPong:
		return nil
	}
	return fmt.Errorf("unknown control opcode %#x", h.Op)
}

// Discard skips n bytes of payload.
func (c *Conn) Discard(n int) error {
	_, err := c.br.Discard(n)
	return err
}

// Message is a data message read by [Conn.ReadMessage].
type Message struct {
	Op         byte   // OpText or OpBinary
	Compressed bool   // its first frame set RSV1
	Payload    []byte // the payload, its fragments joined
}

// ReadMessage reads the next data message into buf[:0], which it grows as needed (pass the
// last Payload to reuse it), and fails past max bytes. It answers pings met on the way and
// reports a close as an error.
func (c *Conn) ReadMessage(buf []byte, max int) (Message, error) {
	m := Message{Payload: buf[:0]}
	first := true
	for {
		h, err := c.ReadHeader()
		if err != nil {
			return m, err
		}
		if h.Op >= OpClose {
			if err := c.Control(h); err != nil {
				return m, err
			}
			continue
		}
		switch {
		case first && h.Op == OpContinuation:
			return m, errors.New("continuation frame without a message")
		case !first && h.Op != OpContinuation:
			return m, fmt.Errorf("opcode %#x inside a fragmented message", h.Op)
		case !first && h.RSV1:
			return m, errors.New("RSV1 on a continuation frame")
		case len(m.Payload)+h.Len > max:
			return m, fmt.Errorf("message over %d bytes", max)
		}
		if first {
			m.Op, m.Compressed, first = h.Op, h.RSV1, false
		}
		n := len(m.Payload)
		m.Payload = slices.Grow(m.Payload, h.Len)[:n+h.Len]
		if _, err := io.ReadFull(c.br, m.Payload[n:]); err != nil {
			return m, err
		}
		if h.Fin {
			return m, nil
		}
	}
}
