package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-go/herald/bench/internal/fanload"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

// nesConn is one client nes connection, whatever carries it: a raw WebSocket
// (conn) or a fallback session (fbConn, in fallback.go). The nes spoken over
// both is the same, written by hand here. One goroutine reads; writes come
// from that goroutine too.
type nesConn interface {
	// send writes one nes message, {"type":typ,"id":N,...} with the rest
	// written by body, around a fresh id N, and returns N.
	send(typ string, body func(b []byte) []byte) (int64, error)
	// read returns the next whole message. The slice is valid until the
	// next read.
	read() ([]byte, error)
	// Close drops the connection; a read in progress returns an error.
	Close()
}

// conn is one client WebSocket connection speaking nes: the raw connection,
// the message being assembled, and a scratch for outgoing frames. One
// goroutine reads; writes come from that goroutine too, except where a
// caller says otherwise.
type conn struct {
	*wsraw.Conn
	msg    []byte // the last message read; reused
	out    []byte // the last frame written; reused
	nextID int64  // the next nes message id
}

// dial connects to addr and performs the opening handshake for path. It
// offers no extension, so the server cannot compress: both servers are
// measured uncompressed.
func dial(addr, path string, timeout time.Duration) (*conn, error) {
	c, err := wsraw.Dial(addr, path, &wsraw.Options{Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, nextID: 1}, nil
}

// read returns the next whole data message, answering WebSocket pings and
// reporting a close as an error. The slice is valid until the next read.
func (c *conn) read() ([]byte, error) {
	m, err := c.ReadMessage(c.msg, fanload.MaxNes)
	c.msg = m.Payload
	if err != nil {
		return nil, err
	}
	if m.Op != wsraw.OpText {
		return nil, fmt.Errorf("opcode %#x: nes sends text", m.Op)
	}
	return m.Payload, nil
}

// send writes one nes message: the JSON text built by body around a fresh
// id, {"type":typ,"id":N,...}. It returns the id.
func (c *conn) send(typ string, body func(b []byte) []byte) (int64, error) {
	id := c.nextID
	c.nextID++
	c.out = fanload.AppendNes(c.out[:0], c.Mask, typ, id, body)
	return id, c.Write(c.out)
}

// hello sends the nes hello and waits for its reply, answering nothing else.
func hello(c nesConn) error {
	id, err := c.send("hello", func(b []byte) []byte { return append(b, `,"version":"2"`...) })
	if err != nil {
		return err
	}
	return await(c, "hello", id)
}

// subscribe subscribes to path and waits for the server's confirmation.
func subscribe(c nesConn, path string) error {
	id, err := c.send("sub", func(b []byte) []byte {
		return strconv.AppendQuote(append(b, `,"path":`...), path)
	})
	if err != nil {
		return err
	}
	return await(c, "sub", id)
}

// await reads until the reply of type typ with id arrives; it fails on an
// error reply and answers nes pings on the way.
func await(c nesConn, typ string, id int64) error {
	for {
		m, err := c.read()
		if err != nil {
			return err
		}
		t := fanload.Field(m, `"type":"`)
		if string(t) == "ping" {
			if err := pong(c); err != nil {
				return err
			}
			continue
		}
		if string(t) != typ {
			return fmt.Errorf("waiting for %s %d, got %.200s", typ, id, m)
		}
		if got, ok := fanload.Number(m, `"id":`); !ok || got != id {
			return fmt.Errorf("waiting for %s %d, got %.200s", typ, id, m)
		}
		if bytes.Contains(m, []byte(`"statusCode":`)) {
			return fmt.Errorf("%s refused: %.200s", typ, m)
		}
		return nil
	}
}

// pong answers a nes heartbeat ping, as the @hapi/nes client does.
func pong(c nesConn) error {
	_, err := c.send("ping", nil)
	return err
}
