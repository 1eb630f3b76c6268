package websocket

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-go/herald/extensions"
	"github.com/herald-go/herald/extensions/deflate"
)

// fuzzKey is the handshake key of the fuzz targets; its Sec-WebSocket-Accept is fuzzAccept.
const (
	fuzzKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	fuzzAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// FuzzReadHandshakeResponse feeds arbitrary bytes to Dial's response reader as the server's
// answer. It must never panic, and a response it accepts must meet RFC 6455 §4.1: status 101,
// Upgrade and Connection tokens, the right Sec-WebSocket-Accept, a subprotocol that was
// offered, only the extension offered (permessage-deflate); the bytes after the head stay in the reader, untouched.
func FuzzReadHandshakeResponse(f *testing.F) {
	valid := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + fuzzAccept + "\r\n"
	f.Add([]byte(valid + "\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Protocol: irc\r\n\r\n\x81\x02hi"))
	f.Add([]byte(valid + "Sec-WebSocket-Protocol: chat\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10; server_no_context_takeover\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"))
	f.Add([]byte(valid + "Sec-WebSocket-Extensions: x-other, permessage-deflate\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"))
	f.Add([]byte("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept:  " + fuzzAccept + " \r\n\r\n"))
	f.Add([]byte("HTTP/1.0 101\r\n\r\n"))
	f.Fuzz(func(t *testing.T, input []byte) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: "x", Path: "/"}}
		offered := []string{"irc", "amqp"}
		br := bufio.NewReaderSize(&headerLimit{r: bytes.NewReader(input), n: 4096}, 512)
		hs, resp, err := readHandshakeResponse(br, req, fuzzKey, offered, []Extension{deflate.New(deflate.Options{})})
		if err != nil {
			if hs != nil && resp == nil {
				t.Fatal("an invalid 101 without its response")
			}
			return
		}
		if resp == nil || hs == nil {
			t.Fatal("success without a response")
		}
		if resp.StatusCode != 101 || !headerHasToken(resp.Header, "Upgrade", "websocket") ||
			!headerHasToken(resp.Header, "Connection", "upgrade") ||
			strings.TrimSpace(resp.Header.Get("Sec-WebSocket-Accept")) != fuzzAccept {
			t.Fatalf("accepted an invalid 101: %+v", resp)
		}
		if hs.protocol != "" && !slices.Contains(offered, hs.protocol) {
			t.Fatalf("accepted subprotocol %q, not offered", hs.protocol)
		}
		if hs.extensions != nil {
			agreed, err := extensions.Parse(hs.extensions.Header)
			if err != nil {
				t.Fatalf("negotiated header %q: %v", hs.extensions.Header, err)
			}
			for _, o := range agreed {
				if o.Name != "permessage-deflate" {
					t.Fatalf("accepted extension %q, not offered", o.Name)
				}
			}
		}
		// What follows the head is the connection's: it must be the end of the input, whole.
		rest, _ := io.ReadAll(br)
		if !bytes.HasSuffix(input, rest) {
			t.Fatalf("bytes after the head changed: % x", rest)
		}
	})
}

// FuzzReadConnectResponse feeds arbitrary bytes to the reader of a proxy's answer to CONNECT:
// no panic; a tunnel only on 2xx; the bytes after the head handed over whole, as the tunnel's
// first.
func FuzzReadConnectResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n"))
	f.Add([]byte("HTTP/1.0 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n\x81\x00"))
	f.Add([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 3\r\n\r\nno!"))
	f.Add([]byte("HTTP/1.1 200\r\nContent-Length: 5\r\n\r\nhello"))
	f.Fuzz(func(t *testing.T, input []byte) {
		pu := &url.URL{Scheme: "http", Host: "proxy:3128"}
		req := newConnectRequest(pu, "example.com:443", nil)
		conn := bytes.NewReader(input)
		br := bufio.NewReaderSize(&headerLimit{r: conn, n: 4096}, 512)
		resp, pending, err := readConnectResponse(br, req)
		if err != nil {
			if resp != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
				t.Fatalf("a %d refused", resp.StatusCode)
			}
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			t.Fatalf("a tunnel on %d", resp.StatusCode)
		}
		// The tunnel goes on from the connection, after the pending bytes.
		rest, _ := io.ReadAll(conn)
		tunnel := append(pending, rest...)
		if !bytes.HasSuffix(input, tunnel) {
			t.Fatalf("the tunnel's first bytes changed: % x", tunnel)
		}
	})
}

// FuzzSOCKS5 plays an arbitrary SOCKS5 proxy: whatever it answers, the client never panics or
// hangs, and after a success it has read exactly the proxy's replies, nothing of the tunnel.
func FuzzSOCKS5(f *testing.F) {
	f.Add([]byte{5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 't', 'u', 'n'}, true)
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80}, true)
	f.Add([]byte{5, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{5, 0xff}, false)
	f.Add([]byte{5, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80}, false)
	f.Fuzz(func(t *testing.T, replies []byte, creds bool) {
		client, proxy := net.Pipe()
		defer client.Close()
		go func() { _, _ = io.Copy(io.Discard, proxy) }()
		r := bytes.NewReader(replies)
		go func() {
			_, _ = io.Copy(proxy, r)
			_ = proxy.Close()
		}()
		pu := &url.URL{Scheme: "socks5", Host: "proxy:1080"}
		if creds {
			pu.User = url.UserPassword("user", "pass")
		}
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		if err := socks5Connect(client, pu, "example.com:443"); err != nil {
			return
		}
		// Success: exactly the replies were read; the rest is still in the pipe.
		rest, _ := io.ReadAll(client)
		n := 2 // the chosen method
		if replies[1] == socks5UserPass {
			n += 2 // the authentication status
		}
		switch replies[n+3] {
		case socks5AddrIPv4:
			n += 4 + 4
		case socks5AddrIPv6:
			n += 4 + 16
		case socks5AddrDomain:
			n += 4 + 1 + int(replies[n+4])
		}
		n += 2 // the port
		if got := len(replies) - len(rest); got != n {
			t.Fatalf("read %d bytes of the proxy's, its replies are %d", got, n)
		}
	})
}
