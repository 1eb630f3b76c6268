package main

import (
	"fmt"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// conn is one client WebSocket connection with permessage-deflate
// negotiated: the raw connection, the codec the response implies and
// scratch buffers.
type conn struct {
	*wsraw.Conn
	neg   negotiated
	frame []byte // the outgoing frame, reused
	in    []byte // the incoming message's payload, reused
}

// dial connects to addr, offers the extension header offer, and checks the
// server accepted permessage-deflate. Socket bytes are counted in w from the
// first byte of the handshake.
func dial(addr, path, offer string, w *wsraw.Wire, timeout time.Duration) (*conn, error) {
	c, err := wsraw.Dial(addr, path, &wsraw.Options{Extensions: offer, Timeout: timeout, Wire: w})
	if err != nil {
		return nil, err
	}
	neg, err := negotiate(offer, c.Extensions())
	if err != nil {
		c.Close()
		return nil, err
	}
	return &conn{Conn: c, neg: neg}, nil
}

// send writes one text message as a single masked frame, with RSV1 set
// when payload is compressed.
func (c *conn) send(payload []byte, compressed bool) error {
	first := byte(wsraw.Fin | wsraw.OpText)
	if compressed {
		first |= wsraw.RSV1
	}
	c.frame = wsraw.AppendFrame(c.frame[:0], first, payload, c.Mask)
	return c.Write(c.frame)
}

// readMessage reads one text message's payload (fragments joined) into
// c.in, up to max bytes, answering pings met on the way, and reports
// whether it is compressed.
func (c *conn) readMessage(max int) ([]byte, bool, error) {
	m, err := c.ReadMessage(c.in, max)
	c.in = m.Payload
	if err != nil {
		return nil, false, err
	}
	if m.Op != wsraw.OpText {
		return nil, false, fmt.Errorf("message opcode %#x, want text", m.Op)
	}
	return m.Payload, m.Compressed, nil
}
