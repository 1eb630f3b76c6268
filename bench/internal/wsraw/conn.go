package wsraw

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure [Dial]. The zero value (and nil) dials with no extension, a 4 KiB read
// buffer and a 10 s handshake timeout.
type Options struct {
	// Extensions is the Sec-WebSocket-Extensions header offered, checked by the caller
	// against [Conn.Extensions]. Empty offers none; then a server that answers with one fails
	// the handshake, and server frames may not set RSV1.
	Extensions string
	// ReadBuffer is the size of the read buffer kept after the handshake. Zero means 4096.
	ReadBuffer int
	// Timeout bounds the dial and the handshake. Zero means 10 s.
	Timeout time.Duration
	// Wire, when not nil, counts the connection's socket bytes both ways, from the first byte
	// of the handshake. Nil counts nothing.
	Wire *Wire
}

// Wire counts the bytes connections moved through their sockets: Up written, Down read. One
// Wire may count many connections; it is safe for concurrent use.
type Wire struct {
	Up, Down atomic.Int64
}

// countingReader is a socket's reading side that counts what it read.
type countingReader struct {
	nc *net.TCPConn
	w  *Wire
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.nc.Read(p)
	r.w.Down.Add(int64(n))
	return n, err
}

// Conn is one client WebSocket connection: the socket, its read buffer, the masking key of
// the frames it builds, and scratch space. One goroutine uses it at a time.
type Conn struct {
	// Mask is the masking key of the frames the connection builds: random, chosen at Dial.
	Mask [4]byte

	nc   *net.TCPConn
	br   *bufio.Reader
	wire *Wire
	ext  string // the server's Sec-WebSocket-Extensions
	rsv1 bool   // an extension was offered, so RSV1 may be set
	hdr  [14]byte
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Dial connects to addr (host:port) and performs the opening handshake for path. opts may be
// nil.
func Dial(addr, path string, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ReadBuffer == 0 {
		o.ReadBuffer = 4096
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: o.Timeout}
	nc0, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc0.(*net.TCPConn), wire: o.Wire, rsv1: o.Extensions != ""}
	if err := c.handshake(addr, path, o); err != nil {
		_ = c.nc.Close()
		return nil, err
	}
	_, _ = rand.Read(c.Mask[:])
	return c, nil
}

func (c *Conn) handshake(addr, path string, o Options) error {
	_ = c.nc.SetDeadline(time.Now().Add(o.Timeout))
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + k +
		"\r\nSec-WebSocket-Version: 13\r\n"
	if o.Extensions != "" {
		req += "Sec-WebSocket-Extensions: " + o.Extensions + "\r\n"
	}
	if err := c.Write([]byte(req + "\r\n")); err != nil {
		return err
	}
	var rd io.Reader = c.nc
	if c.wire != nil {
		rd = countingReader{c.nc, c.wire}
	}
	c.br = bufio.NewReaderSize(rd, o.ReadBuffer)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	sum := sha1.Sum([]byte(k + acceptGUID))
	c.ext = strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fmt.Errorf("handshake: status %s", resp.Status)
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return errors.New("handshake: wrong Sec-WebSocket-Accept")
	case o.Extensions == "" && c.ext != "":
		return fmt.Errorf("handshake: unasked extensions %q", c.ext)
	}
	return c.nc.SetDeadline(time.Time{})
}

// Extensions returns the server's Sec-WebSocket-Extensions response, its values joined with
// ", "; empty when it accepted none.
func (c *Conn) Extensions() string { return c.ext }

// Write writes p, a whole frame or more, to the socket.
func (c *Conn) Write(p []byte) error {
	n, err := c.nc.Write(p)
	if c.wire != nil {
		c.wire.Up.Add(int64(n))
	}
	return err
}

// Close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT). It may be called
// from any goroutine, to stop the one reading.
func (c *Conn) Close() {
	_ = c.nc.SetLinger(0)
	_ = c.nc.Close()
}

// Buffered returns how many bytes have been read from the socket but not yet from the Conn.
func (c *Conn) Buffered() int { return c.br.Buffered() }

// NetConn returns the socket, for a caller that takes it over (after checking that nothing
// is [Conn.Buffered]).
func (c *Conn) NetConn() *net.TCPConn { return c.nc }
