package heraldtest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/websocket"
)

// Server is a herald nes server listening on a loopback address for the length of a test, as
// httptest.Server is for an http.Handler.
//
// Client and Start fail the test through t, so call them from the test's goroutine;
// DisconnectAll and Stop may be called from any goroutine, but Stop and Start not at the same
// time.
type Server struct {
	// URL is the address nes clients connect to: "ws://127.0.0.1:PORT". It stays the same
	// across Stop and Start.
	URL string
	// HTTPURL is the same server for plain HTTP requests (the application's routes, the auth
	// endpoint): "http://127.0.0.1:PORT".
	HTTPURL string
	// Nes is the nes server being served, for the test to publish, broadcast and look at its
	// sockets.
	Nes *herald.Server

	addr string

	mu      sync.Mutex
	running *listening // nil while stopped
}

// listening is one period of the server's life between Start and Stop.
type listening struct {
	srv    *http.Server
	served chan struct{} // closed when Serve has returned
}

// NewServer serves nes, the test's nes server (herald.NewServer around the application's
// handler, with its routes and subscriptions), on 127.0.0.1 at a free port. When the test
// ends, after the clients made by Client are closed, it closes nes (herald.Server.Close: every
// socket gets 1001) and the listener.
//
// It fails the test if it cannot listen.
func NewServer(t testing.TB, nes *herald.Server) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("heraldtest: listen on a loopback port: %v", err)
		return nil
	}
	s := &Server{Nes: nes, addr: ln.Addr().String()}
	s.URL = "ws://" + s.addr
	s.HTTPURL = "http://" + s.addr
	s.serve(ln)
	t.Cleanup(func() {
		s.stopListening()
		nes.Close()
	})
	return s
}

// serve serves on ln until stopListening.
func (s *Server) serve(ln net.Listener) {
	l := &listening{
		srv:    &http.Server{Handler: s.Nes, ReadHeaderTimeout: DefaultTimeout},
		served: make(chan struct{}),
	}
	s.mu.Lock()
	s.running = l
	s.mu.Unlock()
	go func() {
		defer close(l.served)
		_ = l.srv.Serve(ln)
	}()
}

// stopListening closes the listener and the HTTP connections, and reports whether the server
// was running. Sockets taken over by nes are left to the caller.
func (s *Server) stopListening() bool {
	s.mu.Lock()
	l := s.running
	s.running = nil
	s.mu.Unlock()
	if l == nil {
		return false
	}
	_ = l.srv.Close()
	<-l.served
	return true
}

// Client returns a client of the server (client.New with URL and opts), connected: Connect has
// returned, the server has answered its hello. It is closed when the test ends.
//
// The client connects directly unless opts.Dial.Proxy says otherwise: a proxy named by the
// environment (HTTP_PROXY, ALL_PROXY) is not used for the test's server. opts is not modified;
// nil means the client's defaults. The connection must be made within DefaultTimeout (and
// opts.ConnectTimeout); the test fails if it is not, or if the server refuses the hello.
func (s *Server) Client(t testing.TB, opts *client.Options) *client.Client {
	t.Helper()
	var o client.Options
	if opts != nil {
		o = *opts
	}
	dial := websocket.DialOptions{}
	if o.Dial != nil {
		dial = *o.Dial
	}
	if dial.Proxy == nil {
		dial.Proxy = websocket.NoProxy
	}
	o.Dial = &dial
	c, err := client.New(s.URL, &o)
	if err != nil {
		t.Fatalf("heraldtest: client.New(%q): %v", s.URL, err)
		return nil
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("heraldtest: connect to %s: %v", s.URL, err)
		return nil
	}
	return c
}

// DisconnectAll closes every open nes socket from the server side (herald.Socket.Disconnect)
// and returns once they have closed. The server keeps listening: clients see a lost
// connection and reconnect.
func (s *Server) DisconnectAll() {
	disconnectAll(s.Nes)
}

// disconnectAll disconnects the sockets open now and waits for them to close.
func disconnectAll(nes *herald.Server) (n int) {
	var open []*herald.Socket
	nes.EachSocket(func(sock *herald.Socket) bool {
		open = append(open, sock)
		return true
	})
	for _, sock := range open {
		sock.Disconnect()
	}
	for _, sock := range open {
		<-sock.Done()
	}
	return len(open)
}

// Stop takes the server down, as a crash or a restart would for its clients: it closes the
// listener, so that connection attempts are refused, and every socket, and returns once they
// have closed. Nes keeps its routes and subscription definitions, ready for Start. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	if !s.stopListening() {
		return
	}
	// A socket whose handshake was under way when the listener closed may join after the
	// first round: go round until none is left, for a while.
	deadline := time.Now().Add(DefaultTimeout)
	for n := disconnectAll(s.Nes); n > 0 && time.Now().Before(deadline); {
		n = disconnectAll(s.Nes)
	}
}

// Start serves again on the address the server had, after Stop; clients that were
// reconnecting find it there. Starting a running server does nothing. It fails the test if the
// address cannot be listened on again.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.running != nil
	s.mu.Unlock()
	if running {
		return
	}
	// The port was ours a moment ago; should the system not have let it go yet, try again
	// for a while.
	ln, err := net.Listen("tcp", s.addr)
	for deadline := time.Now().Add(DefaultTimeout); err != nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		ln, err = net.Listen("tcp", s.addr)
	}
	if err != nil {
		t.Fatalf("heraldtest: listen again on %s: %v", s.addr, err)
		return
	}
	s.serve(ln)
}
