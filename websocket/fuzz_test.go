package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-go/herald/extensions"
	"github.com/herald-go/herald/extensions/deflate"
)

// FuzzReadFrames feeds arbitrary bytes to a server connection as if a client sent them. Reading
// must end with a close or protocol error, never a panic or a hang, and whatever it returns must
// respect the limits.
func FuzzReadFrames(f *testing.F) {
	mask := []byte{1, 2, 3, 4}
	f.Add(append([]byte{0x81, 0x85}, append(mask, 'h'^1, 'e'^2, 'l'^3, 'l'^4, 'o'^1)...))
	f.Add(append([]byte{0x01, 0x81}, append(mask, 'a'^1, 0x89, 0x80, 1, 2, 3, 4, 0x80, 0x81, 1, 2, 3, 4, 'b'^1)...))
	f.Add(append([]byte{0x88, 0x82}, append(mask, 0x03^1, 0xe8^2)...))
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0x7e, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, input []byte) {
		c := fuzzConn(input)
		defer c.shut(ErrClosed)
		readAllChecked(t, c)
	})
}

// fuzzConn is a server connection with MaxLength 1024 reading input as if a client sent it.
func fuzzConn(input []byte) *Conn {
	client, server := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	go func() {
		_, _ = client.Write(input)
		_ = client.Close()
	}()
	opts := (&Options{MaxLength: 1024, PingInterval: -1, FirstFrameTimeout: -1, CloseTimeout: time.Second}).withDefaults()
	return newConn(server, nil, false, opts)
}

// readAllChecked reads c until it fails: the failure must be a close or protocol error, and
// every message read must keep MaxLength 1024 and, if text, be valid UTF-8.
func readAllChecked(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			var ce *CloseError
			var pe *ProtocolError
			if !errors.As(err, &ce) && !errors.As(err, &pe) {
				t.Fatalf("Read ended with %v (%T), want a close or protocol error", err, err)
			}
			return
		}
		if len(msg) > 1024 {
			t.Fatalf("message of %d bytes passed MaxLength 1024", len(msg))
		}
		if typ == MessageText && !utf8.Valid(msg) {
			t.Fatalf("invalid UTF-8 text delivered: % x", msg)
		}
	}
}

// FuzzReadCompressedFrames is FuzzReadFrames with permessage-deflate negotiated: compressed
// messages must inflate within MaxLength, and their frames must stay within what deflate makes
// of it, or fail the connection.
func FuzzReadCompressedFrames(f *testing.F) {
	mask := []byte{1, 2, 3, 4}
	masked := func(b0 byte, p []byte) []byte {
		out := append([]byte{b0, 0x80 | byte(len(p))}, mask...)
		for i, c := range p {
			out = append(out, c^mask[i%4])
		}
		return out
	}
	f.Add(masked(0xc1, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})) // "Hello", compressed
	f.Add(masked(0xc2, []byte{0x00, 0x00, 0x00, 0xff, 0xff}))             // an empty stored block
	f.Add(append(masked(0x42, []byte{0xf2, 0x48}), masked(0x80, []byte{0xcd, 0xc9, 0xc9, 0x07, 0x00})...))
	f.Add([]byte{0xc2, 0xfe, 0x04, 0x80, 1, 2, 3, 4}) // 1152 compressed bytes announced: over the bound
	f.Fuzz(func(t *testing.T, input []byte) {
		c := fuzzConn(input)
		offers, err := extensions.Parse("permessage-deflate; client_max_window_bits")
		if err != nil {
			t.Fatal(err)
		}
		n, err := extensions.ServerNegotiate(offers, []Extension{deflate.New(deflate.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		c.setExtensions(n)
		defer c.shut(ErrClosed)
		readAllChecked(t, c)
	})
}

// FuzzCheckHandshake checks arbitrary handshake headers: no panic, and a request that passes
// carries a well-formed key.
func FuzzCheckHandshake(f *testing.F) {
	f.Add("Upgrade", "websocket", "13", "dGhlIHNhbXBsZSBub25jZQ==", "GET")
	f.Add("keep-alive, upgrade", "WebSocket, h2c", "8", "short", "POST")
	f.Fuzz(func(t *testing.T, connection, upgrade, version, key, method string) {
		r := &http.Request{Method: method, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{
			"Connection": {connection}, "Upgrade": {upgrade},
			"Sec-Websocket-Version": {version}, "Sec-Websocket-Key": {key},
		}}
		got, herr := checkHandshake(r)
		if herr != nil {
			if herr.Status != http.StatusBadRequest && herr.Status != http.StatusUpgradeRequired {
				t.Fatalf("status %d", herr.Status)
			}
			return
		}
		if raw, err := base64.StdEncoding.DecodeString(got); err != nil || len(raw) != 16 {
			t.Fatalf("accepted key %q", got)
		}
		if !IsWebSocket(r) {
			t.Fatal("checkHandshake accepted what IsWebSocket refuses")
		}
	})
}

func TestResponseHeadSanitizes(t *testing.T) {
	h := http.Header{"X-Ok": {"fine"}, "X-Evil": {"a\r\nSet-Cookie: stolen=1"}, "Bad Name": {"x"}, "Connection": {"close"}}
	got := string(responseHead(h, nil, "dGhlIHNhbXBsZSBub25jZQ==", "", nil))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	if len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("response head starts %q", got)
	}
	for _, bad := range []string{"\r\nSet-Cookie", "Bad Name", "Connection: close"} {
		if strings.Contains(got, bad) {
			t.Errorf("%q got into the response:\n%s", bad, got)
		}
	}
	if !strings.Contains(got, "X-Ok: fine\r\n") {
		t.Errorf("a custom header is missing:\n%s", got)
	}
}

// FuzzClosePayload checks the parsing of a close frame's payload, which the peer chooses,
// against RFC 6455 written out here: empty means no code; one byte is a protocol error; the
// code must be 1000-1003, 1007-1014 or 3000-4999 (1002 otherwise); the reason must be UTF-8
// (1007 otherwise). What is accepted builds back into the same payload.
func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte{0x03, 0xe8, 'b', 'y', 'e'})
	f.Add([]byte{0x03, 0xed})
	f.Add([]byte{0x0f, 0xa0, 0xff})
	f.Add([]byte{0x03, 0xf6, 0xed, 0xa0, 0x80})
	f.Fuzz(func(t *testing.T, p []byte) {
		ce, pe := parseClosePayload(p)
		if (ce == nil) == (pe == nil) {
			t.Fatalf("% x: want exactly one of a close error and a protocol error, got %v and %v", p, ce, pe)
		}
		var want StatusCode // the failure's code, 0 for none
		switch {
		case len(p) == 0:
		case len(p) == 1:
			want = StatusProtocolError
		default:
			code := int(p[0])<<8 | int(p[1])
			registered := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014
			if !registered && (code < 3000 || code > 4999) {
				want = StatusProtocolError
			} else if !utf8.Valid(p[2:]) {
				want = StatusInvalidFramePayload
			}
		}
		if want != 0 {
			if pe == nil || pe.Code != want {
				t.Fatalf("% x: got %v, %v; want a failure with %d", p, ce, pe, want)
			}
			return
		}
		if pe != nil {
			t.Fatalf("% x: refused with %v", p, pe)
		}
		if len(p) == 0 {
			if ce.Code != StatusNoStatusRcvd || ce.Reason != "" {
				t.Fatalf("an empty payload gave %v", ce)
			}
			return
		}
		if back := closePayload(nil, ce.Code, ce.Reason); !bytes.Equal(back, p) {
			t.Fatalf("% x parsed as %d %q, which builds % x", p, ce.Code, ce.Reason, back)
		}
	})
}

// hijackWriter is an http.ResponseWriter whose connection can be taken over, as net/http's
// for an HTTP/1.1 request: its status and body are what a refusal wrote, its connection the
// server's end of a pipe.
type hijackWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	conn   net.Conn
}

func (w *hijackWriter) Header() http.Header { return w.header }
func (w *hijackWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *hijackWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// FuzzUpgrade runs Upgrade on any request a client can send (read by net/http's own request
// parser) with subprotocols and permessage-deflate configured. A refusal is a 4xx with a
// message saying why, never a 5xx (nothing the client sends can make the server's
// configuration wrong); an upgrade happens only for a request IsWebSocket takes, and its
// 101 carries the right accept key, a subprotocol both sides named and an extension header
// the client can parse.
func FuzzUpgrade(f *testing.F) {
	valid := "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + fuzzKey +
		"\r\nSec-WebSocket-Version: 13\r\n"
	f.Add([]byte(valid + "\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Protocol: x, chat , superchat\r\nOrigin: http://example.com\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=abc, permessage-deflate\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=7; x=\"\\\"\"\r\n\r\n"))
	f.Add([]byte(valid + "Origin: https://evil.example\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 8\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n"))
	opts := &Options{Protocols: []string{"chat", "superchat"}, PingInterval: -1, FirstFrameTimeout: -1,
		Extensions: []Extension{deflate.New(deflate.Options{})}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		server, client := net.Pipe()
		defer client.Close()
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		w := &hijackWriter{header: http.Header{}, conn: server}
		c, err := Upgrade(w, r, opts)
		if err != nil {
			_ = server.Close()
			<-got
			if w.status < 400 || w.status > 499 {
				t.Fatalf("refused with status %d (%v) for %q", w.status, err, raw)
			}
			if w.body.Len() == 0 {
				t.Fatalf("refused with %d and no message for %q", w.status, raw)
			}
			return
		}
		if !IsWebSocket(r) {
			t.Fatalf("upgraded what IsWebSocket refuses: %q", raw)
		}
		_ = c.CloseNow()
		head := <-got
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), r)
		if err != nil {
			t.Fatalf("the 101 does not parse: %v\n%q", err, head)
		}
		key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
			t.Fatalf("bad 101 for key %q:\n%s", key, head)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" && (p != c.Protocol() || !slices.Contains(opts.Protocols, p) ||
			!strings.Contains(strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ","), p)) {
			t.Fatalf("subprotocol %q answered to %q", p, r.Header.Values("Sec-WebSocket-Protocol"))
		}
		if e := resp.Header.Values("Sec-WebSocket-Extensions"); len(e) > 0 {
			if _, err := extensions.Parse(e...); err != nil {
				t.Fatalf("extension header %q does not parse: %v", e, err)
			}
		}
	})
}
