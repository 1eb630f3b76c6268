// Command floor is not a nes server: it is the least a Go server on package
// net can do to give the load client the same bytes, a lower bound to read
// herald's numbers against. It answers hello, sub, GET /h and POST /publish
// as herald's examples/nes does, but finds fields by scanning bytes instead
// of decoding JSON, routes nothing through an http.Handler, runs no filter,
// sets no write deadline, queues nothing, and writes a publication to every
// subscriber from the publishing connection's goroutine, one write(2) each.
// Everything a real server must do beyond that (authentication, limits,
// slow-consumer handling, heartbeats) is left out.
//
//	floor -addr 127.0.0.1:0
//
// Its first line on standard output is "listening on http://ADDR".
package main

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	s := &server{subs: map[string]map[*conn]bool{}}
	for {
		nc, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go s.serve(nc)
	}
}

type server struct {
	mu   sync.Mutex
	subs map[string]map[*conn]bool // path → subscribed connections
}

type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	mu  sync.Mutex // writes
	out []byte
}

func (c *conn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// reply writes one text frame around msg.
func (c *conn) reply(msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = appendFrame(c.out[:0], msg)
	_, err := c.nc.Write(c.out)
	return err
}

func appendFrame(b, payload []byte) []byte {
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x81, byte(n))
	case n < 1<<16:
		b = append(b, 0x81, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func (s *server) serve(nc net.Conn) {
	defer nc.Close()
	c := &conn{nc: nc, br: bufio.NewReader(nc)}
	req, err := http.ReadRequest(c.br)
	if err != nil {
		return
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if _, err := io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
		base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n"); err != nil {
		return
	}
	var paths []string
	defer func() {
		s.mu.Lock()
		for _, p := range paths {
			delete(s.subs[p], c)
		}
		s.mu.Unlock()
	}()
	var msg, out []byte
	for {
		var err error
		if msg, err = c.readMessage(msg[:0]); err != nil {
			return
		}
		id, _ := value(msg, `"id":`)
		out = append(out[:0], `{"type":"`...)
		switch typ, _ := value(msg, `"type":`); string(typ) {
		case `"hello"`:
			out = append(out, `hello","id":`...)
			out = append(out, id...)
			out = append(out, `,"heartbeat":false,"socket":"floor"}`...)
		case `"sub"`:
			path, _ := value(msg, `"path":`)
			p, err := strconv.Unquote(string(path))
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.subs[p] == nil {
				s.subs[p] = map[*conn]bool{}
			}
			s.subs[p][c] = true
			s.mu.Unlock()
			paths = append(paths, p)
			out = append(out, `sub","id":`...)
			out = append(out, id...)
			out = append(out, `,"path":`...)
			out = append(out, path...)
			out = append(out, '}')
		case `"request"`:
			out = append(out, `request","id":`...)
			out = append(out, id...)
			if bytes.Contains(msg, []byte(`"path":"/publish"`)) {
				s.publish(msg)
				out = append(out, `,"statusCode":200,"payload":{"ok":true}}`...)
			} else {
				out = append(out, `,"statusCode":200,"payload":"world!"}`...)
			}
		case `"ping"`:
			continue
		default:
			return
		}
		if err := c.reply(out); err != nil {
			return
		}
	}
}

// publish sends {"type":"pub","path":P,"message":M} to every subscriber of
// the payload's path, in this goroutine. It expects the payload written as
// the load client writes it: {"path":P,"message":M}}.
func (s *server) publish(msg []byte) {
	i := bytes.Index(msg, []byte(`"payload":{"path":`))
	if i < 0 {
		return
	}
	rest := msg[i+len(`"payload":{`):]
	path, _ := value(rest, `"path":`)
	p, err := strconv.Unquote(string(path))
	j := bytes.Index(rest, []byte(`"message":`))
	if err != nil || j < 0 || !bytes.HasSuffix(rest, []byte("}}")) {
		return
	}
	m := rest[j+len(`"message":`) : len(rest)-2]
	pub := appendFrame(nil, []byte(`{"type":"pub","path":`+string(path)+`,"message":`+string(m)+`}`))
	s.mu.Lock()
	targets := make([]*conn, 0, len(s.subs[p]))
	for c := range s.subs[p] {
		targets = append(targets, c)
	}
	s.mu.Unlock()
	for _, c := range targets {
		_ = c.write(pub)
	}
}

// value returns the JSON scalar after key: a number, or a string with its
// quotes (no escapes).
func value(m []byte, key string) ([]byte, bool) {
	i := bytes.Index(m, []byte(key))
	if i < 0 {
		return nil, false
	}
	v := m[i+len(key):]
	if len(v) > 0 && v[0] == '"' {
		if j := bytes.IndexByte(v[1:], '"'); j >= 0 {
			return v[:j+2], true
		}
		return nil, false
	}
	j := 0
	for j < len(v) && (v[j] >= '0' && v[j] <= '9') {
		j++
	}
	return v[:j], j > 0
}

// readMessage reads one whole client message (masked frames) into dst.
func (c *conn) readMessage(dst []byte) ([]byte, error) {
	var h [8]byte
	for {
		if _, err := io.ReadFull(c.br, h[:2]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		if h[1]&0x80 == 0 {
			return nil, errors.New("unmasked client frame")
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, h[:2]); err != nil {
				return nil, err
			}
			n = int(binary.BigEndian.Uint16(h[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, h[:8]); err != nil {
				return nil, err
			}
			v := binary.BigEndian.Uint64(h[:8])
			if v > 1<<20 {
				return nil, errors.New("frame too big")
			}
			n = int(v)
		}
		var mask [4]byte
		if _, err := io.ReadFull(c.br, mask[:]); err != nil {
			return nil, err
		}
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, dst[start:]); err != nil {
			return nil, err
		}
		for i := range dst[start:] {
			dst[start+i] ^= mask[i&3]
		}
		switch {
		case op == 0x8:
			return nil, io.EOF
		case op >= 0x8: // ping, pong: the client sends none
			dst = dst[:start]
		case fin:
			return dst, nil
		}
	}
}
