package client_test

// Small proxies written here for what no real proxy does on demand: refuse the WebSocket
// upgrade only while a test says so, or pass the upgrade and then drop every frame.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// upgradeGate is a reverse proxy to target that strips Upgrade from requests while blocked, as
// a proxy that does not know WebSocket does.
type upgradeGate struct {
	addr    string
	blocked atomic.Bool
}

func newUpgradeGate(t *testing.T, target string) *upgradeGate {
	g := &upgradeGate{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.blocked.Load() {
			r.Header.Del("Upgrade")
			r.Header.Del("Connection")
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.addr = strings.TrimPrefix(srv.URL, "http://")
	return g
}

func (g *upgradeGate) setBlocked(b bool) { g.blocked.Store(b) }

// stripUpgrade is a reverse proxy to target that never forwards Upgrade.
func stripUpgrade(t *testing.T, target string) string {
	g := newUpgradeGate(t, target)
	g.setBlocked(true)
	return g.addr
}

// relay forwards TCP connections to a server through pipe, and can cut them all at once, as a
// network failure would (herald's own Socket.Disconnect waits for the requests in flight).
type relay struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newRelay(t *testing.T, target string, pipe func(in, out net.Conn)) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &relay{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		r.cut()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				pipe(in, out)
			}()
		}
	}()
	return r
}

func (r *relay) url() string { return "ws://" + r.ln.Addr().String() }

// cut closes every connection through the relay.
func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// pipeBoth copies both ways until either side ends.
func pipeBoth(in, out net.Conn) {
	done := make(chan struct{})
	go func() { _, _ = io.Copy(out, in); out.Close(); close(done) }()
	_, _ = io.Copy(in, out)
	in.Close()
	<-done
}

// dropFramesAfterUpgrade relays TCP connections to target; a connection that asks for a
// WebSocket upgrade gets its 101 answer and then nothing more either way, as from a proxy that
// passes the handshake and drops the frames. Other connections are relayed whole.
func dropFramesAfterUpgrade(t *testing.T, target string) string {
	return newRelay(t, target, relayDroppingFrames).ln.Addr().String()
}

func relayDroppingFrames(in, out net.Conn) {
	defer in.Close()
	defer out.Close()
	br := bufio.NewReader(in)
	head, err := readHead(br)
	if err != nil {
		return
	}
	if _, err := out.Write(head); err != nil {
		return
	}
	if !bytes.Contains(bytes.ToLower(head), []byte("upgrade: websocket")) {
		pipeBoth(readerConn{in, br}, out)
		return
	}
	resp, err := readHead(bufio.NewReader(out))
	if err != nil {
		return
	}
	if _, err := in.Write(resp); err != nil {
		return
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, br); close(done) }() // the client's frames vanish
	_, _ = io.Copy(io.Discard, out)                             // and the server's
	in.Close()
	<-done
}

// readHead reads an HTTP message head, through the blank line.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadBytes('\n')
		head = append(head, line...)
		if err != nil {
			return nil, err
		}
		if len(line) <= 2 {
			return head, nil
		}
	}
}

// readerConn is a connection whose reads come through a buffered reader over it.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
