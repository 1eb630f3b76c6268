package fanload

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// peer is a hand-written server for one connection: it answers the handshake, waits for
// release to be closed (the client takes the socket over first), writes frames, then hands
// back what the client wrote until it closed.
func peer(t *testing.T, frames []byte) (addr string, release chan struct{}, got <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	release = make(chan struct{})
	out := make(chan []byte, 1)
	go func() {
		defer close(out)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		if _, err := io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n"); err != nil {
			return
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			return
		}
		if _, err := nc.Write(frames); err != nil {
			return
		}
		b, _ := io.ReadAll(br)
		out <- b
	}()
	return ln.Addr().String(), release, out
}

// frame is an unmasked server frame with a payload under 126 bytes.
func frame(first byte, payload string) []byte {
	return append([]byte{first, byte(len(payload))}, payload...)
}

// takeOver dials addr and hands the connection to a new Poller.
func takeOver(t *testing.T, addr string, o Options) (*Poller, *Conn) {
	t.Helper()
	c, err := wsraw.Dial(addr, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := TakeOver(c, o)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	p, err := NewPoller(4)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if _, err := p.Add(r); err != nil {
		r.Close()
		t.Fatal(err)
	}
	return p, r
}

func TestUntilAssemblesAndPongs(t *testing.T) {
	frames := slices.Concat(
		frame(wsraw.OpText, "hel"),                  // first fragment
		frame(wsraw.Fin|wsraw.OpPing, "p"),          // a ping between the fragments
		frame(wsraw.Fin|wsraw.OpContinuation, "lo"), // last fragment
		frame(wsraw.Fin|wsraw.OpText, strings.Repeat("x", 100)),
	)
	addr, release, got := peer(t, frames)
	p, r := takeOver(t, addr, Options{Op: wsraw.OpText, Fragments: true, Max: 128})
	close(release)
	var msgs []string
	ok, err := p.Until(time.Now().Add(10*time.Second), func() bool { return len(msgs) == 2 },
		func(i int, m []byte) error {
			if i != 0 {
				t.Errorf("message from connection %d, want 0", i)
			}
			msgs = append(msgs, string(m))
			return nil
		})
	r.Close()
	if err != nil || !ok {
		t.Fatalf("Until: %v, %v", ok, err)
	}
	if want := []string{"hello", strings.Repeat("x", 100)}; !slices.Equal(msgs, want) {
		t.Errorf("messages %q, want %q", msgs, want)
	}
	b := <-got
	if len(b) != 7 || b[0] != wsraw.Fin|wsraw.OpPong || b[1] != 0x80|1 || b[6]^b[2] != 'p' {
		t.Errorf("the client wrote %x, want a masked pong of \"p\"", b)
	}
}

func TestUntilRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		o      Options
		frames []byte
		want   string
	}{
		"over Max":        {Options{Op: wsraw.OpText, Max: 4}, frame(wsraw.Fin|wsraw.OpText, "12345"), "a frame of 5 bytes"},
		"other opcode":    {Options{Op: wsraw.OpBinary, Max: 64}, frame(wsraw.Fin|wsraw.OpText, "a"), "unexpected frame"},
		"fragments":       {Options{Op: wsraw.OpBinary, Max: 64}, frame(wsraw.OpBinary, "a"), "unexpected frame"},
		"message too big": {Options{Op: wsraw.OpText, Fragments: true, Max: 4}, append(frame(wsraw.OpText, "123"), frame(wsraw.OpContinuation, "45")...), "a message over 4 bytes"},
		"close":           {Options{Op: wsraw.OpText, Max: 64}, frame(wsraw.Fin|wsraw.OpClose, ""), "closed a connection"},
	} {
		t.Run(name, func(t *testing.T) {
			addr, release, got := peer(t, tc.frames)
			p, r := takeOver(t, addr, tc.o)
			close(release)
			ok, err := p.Until(time.Now().Add(10*time.Second), func() bool { return false },
				func(int, []byte) error { return nil })
			r.Close()
			<-got
			if ok || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Until: %v, %v; want an error with %q", ok, err, tc.want)
			}
		})
	}
}

func TestNesHelpers(t *testing.T) {
	m := NesMessage(nil, "request", 7, PublishBody("/item/5", 12))
	want := `{"type":"request","id":7,"method":"POST","path":"/publish","payload":{"path":"/item/5","message":{"seq":12,"status":"complete"}}}`
	if string(m) != want {
		t.Fatalf("NesMessage: %s\nwant %s", m, want)
	}
	if f := Field(m, `"type":"`); string(f) != "request" {
		t.Errorf("Field type: %q", f)
	}
	if n, ok := Number(m, `"seq":`); !ok || n != 12 {
		t.Errorf("Number seq: %d, %v", n, ok)
	}
	if _, ok := Number(m, `"missing":`); ok {
		t.Error("Number found a missing key")
	}
	if _, ok := Number([]byte(`"id":x`), `"id":`); ok {
		t.Error("Number read a non-number")
	}
	f := AppendNes(nil, [4]byte{1, 2, 3, 4}, "ping", 1, nil)
	if f[0] != wsraw.Fin|wsraw.OpText || int(f[1]&0x7f) != len(`{"type":"ping","id":1}`) || !bytes.Equal(f[2:6], []byte{1, 2, 3, 4}) {
		t.Errorf("AppendNes header %x", f[:6])
	}
}
