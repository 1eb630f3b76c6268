package testpeers

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is a real nats-server, embedded from its Go module, listening on a free loopback
// port. Its methods are safe for concurrent use.
type NATSServer struct {
	t    testing.TB
	mu   sync.Mutex
	srv  *server.Server // nil while shut down
	port int
}

// StartNATS starts a nats-server for the test; it is shut down when the test ends.
func StartNATS(t testing.TB) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, port: -1}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *NATSServer) start() {
	s.t.Helper()
	var last error
	// Restart reuses the port; a moment after Shutdown it may not be free yet.
	for attempt := 0; attempt < 10; attempt++ {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: s.port, NoLog: true, NoSigs: true})
		if err != nil {
			s.t.Fatalf("nats-server: %v", err)
		}
		go srv.Start()
		if srv.ReadyForConnections(2 * time.Second) {
			s.srv = srv
			s.port = srv.Addr().(*net.TCPAddr).Port
			return
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		last = fmt.Errorf("not ready for connections on port %d", s.port)
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("nats-server: %v", last)
}

// URL returns the server's client URL (nats://127.0.0.1:PORT); it stays the same across
// Restart.
func (s *NATSServer) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// Shutdown stops the server, closing every client connection. It may be called again.
func (s *NATSServer) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

// stop shuts the server down if it is running, with s.mu held.
func (s *NATSServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server again on the same port after Shutdown (it shuts it down first if
// it is running).
func (s *NATSServer) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
	s.start()
}
