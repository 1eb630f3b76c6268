package wsraw

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// peer is a hand-written server for one connection: it answers the handshake with
// extensions (when not empty), writes frames, then hands back what the client wrote.
func peer(t *testing.T, extensions string, frames []byte) (addr string, got <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan []byte, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + acceptGUID))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
		if extensions != "" {
			resp += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
		}
		if _, err := io.WriteString(nc, resp+"\r\n"); err != nil {
			return
		}
		if _, err := nc.Write(frames); err != nil {
			return
		}
		b, _ := io.ReadAll(br)
		out <- b
	}()
	return ln.Addr().String(), out
}

// serverFrame is an unmasked server frame.
func serverFrame(first byte, payload string) []byte {
	return append([]byte{first, byte(len(payload))}, payload...)
}

// unmask reads one masked client frame (payload under 126 bytes) from b.
func unmask(t *testing.T, b []byte) (first byte, payload []byte, rest []byte) {
	t.Helper()
	if len(b) < 6 || b[1]&0x80 == 0 || int(b[1]&0x7f) > len(b)-6 {
		t.Fatalf("not a whole masked frame: %x", b)
	}
	n := int(b[1] & 0x7f)
	mask, p := b[2:6], bytes.Clone(b[6:6+n])
	for i := range p {
		p[i] ^= mask[i&3]
	}
	return b[0], p, b[6+n:]
}

func TestReadMessage(t *testing.T) {
	t.Parallel()
	frames := slices.Concat(
		serverFrame(OpText, "hel"),         // a fragmented message ...
		serverFrame(Fin|OpPing, "are you"), // ... a ping in the middle ...
		serverFrame(Fin|OpContinuation, "lo"),
		serverFrame(Fin|OpBinary, "two"),
		serverFrame(Fin|OpClose, "\x03\xe8bye"),
	)
	addr, got := peer(t, "", frames)
	c, err := Dial(addr, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage(nil, 100)
	if err != nil || m.Op != OpText || string(m.Payload) != "hello" {
		t.Fatalf("first message: %+v %q, %v", m, m.Payload, err)
	}
	m, err = c.ReadMessage(m.Payload, 100)
	if err != nil || m.Op != OpBinary || string(m.Payload) != "two" {
		t.Fatalf("second message: %+v %q, %v", m, m.Payload, err)
	}
	if _, err = c.ReadMessage(nil, 100); err == nil || !strings.Contains(err.Error(), `1000 "bye"`) {
		t.Fatalf("close: %v", err)
	}
	if err := c.Write(AppendFrame(nil, Fin|OpBinary, []byte("from the client"), c.Mask)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b := <-got
	first, p, b := unmask(t, b)
	if first != Fin|OpPong || string(p) != "are you" {
		t.Errorf("pong: %#x %q", first, p)
	}
	first, p, b = unmask(t, b)
	if first != Fin|OpBinary || string(p) != "from the client" || len(b) != 0 {
		t.Errorf("message: %#x %q, then %x", first, p, b)
	}
}

func TestReadMessageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		extensions string // offered, and answered
		frames     []byte
		max        int
		want       string
	}{
		{"over max", "", serverFrame(Fin|OpText, "too long"), 4, "message over 4 bytes"},
		{"RSV1 without an extension", "", serverFrame(Fin|RSV1|OpText, "z"), 100, "RSV bits"},
		{"RSV1 on a continuation", "x-test", slices.Concat(serverFrame(RSV1|OpText, "a"), serverFrame(Fin|RSV1|OpContinuation, "b")), 100, "RSV1 on a continuation"},
		{"continuation first", "", serverFrame(Fin|OpContinuation, "a"), 100, "continuation frame without a message"},
		{"masked", "", []byte{Fin | OpText, 0x81, 1, 2, 3, 4, 'a'}, 100, "masked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := peer(t, tt.extensions, tt.frames)
			c, err := Dial(addr, "/", &Options{Extensions: tt.extensions})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.ReadMessage(nil, tt.max); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestDialUnaskedExtension(t *testing.T) {
	t.Parallel()
	addr, _ := peer(t, "permessage-deflate", nil)
	if _, err := Dial(addr, "/", nil); err == nil || !strings.Contains(err.Error(), "unasked extensions") {
		t.Fatalf("got %v", err)
	}
	addr, _ = peer(t, "permessage-deflate", nil)
	c, err := Dial(addr, "/", &Options{Extensions: "permessage-deflate; client_no_context_takeover"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Extensions() != "permessage-deflate" {
		t.Errorf("Extensions() = %q", c.Extensions())
	}
}

func TestAppendFrame(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 7, 125, 126, 65535, 65536} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			payload := bytes.Repeat([]byte("abcdefghijk"), n/11+1)[:n]
			mask := [4]byte{1, 2, 3, 4}
			b := AppendFrame([]byte("x"), Fin|OpBinary, payload, mask)
			b = b[1:]
			hdr := 2
			switch {
			case n >= 1<<16:
				hdr = 10
			case n >= 126:
				hdr = 4
			}
			if len(b) != hdr+4+n || b[0] != Fin|OpBinary || b[1]&0x80 == 0 {
				t.Fatalf("frame of %d bytes with header %x for %d", len(b), b[:2], n)
			}
			p := b[hdr+4:]
			for i := range p {
				p[i] ^= mask[i&3]
			}
			if !bytes.Equal(p, payload) {
				t.Error("payload does not unmask to what was framed")
			}
		})
	}
}

type closer struct{ closed *atomic.Int64 }

func (c closer) Close() { c.closed.Add(1) }

func TestDialAllClosesOnFailure(t *testing.T) {
	t.Parallel()
	var closed atomic.Int64
	failure := errors.New("no")
	cs, err := DialAll(100, 4, func(i int) (closer, error) {
		if i == 50 {
			return closer{}, failure
		}
		return closer{&closed}, nil
	})
	if !errors.Is(err, failure) || cs != nil {
		t.Fatalf("got %d connections and %v", len(cs), err)
	}
	if closed.Load() == 0 {
		t.Error("the connections opened were not closed")
	}
	cs, err = DialAll(100, 4, func(int) (closer, error) { return closer{&closed}, nil })
	if err != nil || len(cs) != 100 {
		t.Fatalf("got %d connections and %v", len(cs), err)
	}
}
