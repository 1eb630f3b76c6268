package fanload

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// MaxNes bounds a nes message from a server; the benchmarks' are under 200 bytes.
const MaxNes = 1 << 20

// NesMessage appends {"type":typ,"id":id,...} to j, the rest written by body (nil writes
// nothing more).
func NesMessage(j []byte, typ string, id int64, body func(b []byte) []byte) []byte {
	j = append(j, `{"type":"`...)
	j = append(j, typ...)
	j = append(j, `","id":`...)
	j = strconv.AppendInt(j, id, 10)
	if body != nil {
		j = body(j)
	}
	return append(j, '}')
}

// AppendNes appends a text frame masked with mask around the nes message
// {"type":typ,"id":id,...}, the rest written by body, to b.
func AppendNes(b []byte, mask [4]byte, typ string, id int64, body func(b []byte) []byte) []byte {
	var js [256]byte
	return wsraw.AppendFrame(b, wsraw.Fin|wsraw.OpText, NesMessage(js[:0], typ, id, body), mask)
}

// PublishBody writes the rest of the benchmarks' publish request for seq: POST /publish
// {path: topic, message: {seq, status}}.
func PublishBody(topic string, seq int64) func(b []byte) []byte {
	return func(b []byte) []byte {
		b = append(b, `,"method":"POST","path":"/publish","payload":{"path":`...)
		b = strconv.AppendQuote(b, topic)
		b = append(b, `,"message":{"seq":`...)
		b = strconv.AppendInt(b, seq, 10)
		return append(b, `,"status":"complete"}}`...)
	}
}

// Field returns the bytes after key up to the next '"': the value of a JSON string field with
// no escapes, which is all the benchmarks' fields are. The servers' messages are flat enough
// that the first match is the field.
func Field(m []byte, key string) []byte {
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

// Number returns the non-negative integer after key, and whether there is one (of at most 18
// digits).
func Number(m []byte, key string) (int64, bool) {
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

// nesConn is a nes connection in its blocking phase (handshake, hello, subscription), before
// a [Poller] takes it over.
type nesConn struct {
	*wsraw.Conn
	msg    []byte
	out    []byte
	nextID int64
}

// dialNes opens a WebSocket to addr, offering no extension (so nothing is compressed).
func dialNes(addr, path string, timeout time.Duration) (*nesConn, error) {
	c, err := wsraw.Dial(addr, path, &wsraw.Options{Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return &nesConn{Conn: c, nextID: 1}, nil
}

// send writes the nes message {"type":typ,"id":N,...}, the rest written by body, and
// returns N.
func (c *nesConn) send(typ string, body func([]byte) []byte) (int64, error) {
	id := c.nextID
	c.nextID++
	c.out = AppendNes(c.out[:0], c.Mask, typ, id, body)
	return id, c.Write(c.out)
}

// call sends a nes message and waits (reading with a deadline) for its reply, answering
// heartbeat pings meanwhile; an error reply fails.
func (c *nesConn) call(typ string, body func([]byte) []byte, timeout time.Duration) error {
	id, err := c.send(typ, body)
	if err != nil {
		return err
	}
	_ = c.NetConn().SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = c.NetConn().SetReadDeadline(time.Time{}) }()
	for {
		m, err := c.ReadMessage(c.msg, MaxNes)
		c.msg = m.Payload
		if err != nil {
			return fmt.Errorf("waiting for the %s reply: %w", typ, err)
		}
		t := Field(m.Payload, `"type":"`)
		if string(t) == "ping" {
			if _, err := c.send("ping", nil); err != nil {
				return err
			}
			continue
		}
		if got, ok := Number(m.Payload, `"id":`); string(t) != typ || !ok || got != id ||
			bytes.Contains(m.Payload, []byte(`"statusCode":`)) {
			return fmt.Errorf("waiting for %s %d, got %.200s", typ, id, m.Payload)
		}
		return nil
	}
}
