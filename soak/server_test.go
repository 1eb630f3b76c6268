//go:build unix

package soak

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/fallback"
)

// The server's limits, small so that the slow-consumer and hostile phases cross them quickly.
const (
	sendQueueLimit  = 128 << 10 // herald.Options.SendQueueLimit
	sendTimeout     = 3 * time.Second
	maxRequestBytes = 64 << 10         // herald.Options.MaxRequestBytes: bigger nes messages close with 1009
	bufferBytes     = 128 << 10        // fallback.Options.BufferBytes
	grace           = 10 * time.Second // the default is 30 s; with 3 s, poll sessions expired when the CPU was starved (load average 18 on 2 cores)
	heartbeatEvery  = 10 * time.Second // the default is 15 s and 5 s: a CPU shared with other work (make test runs packages side by side) must not drop healthy sockets
	heartbeatWait   = 5 * time.Second
	helloTimeout    = 5 * time.Second // the default
	pollTimeout     = 5 * time.Second
	// readHeaderTimeout is http.Server's: 2 s reset handshakes when the CPU was starved.
	readHeaderTimeout = 5 * time.Second
	serverSndBuf      = 32 << 10 // SO_SNDBUF of the server's accepted sockets
)

// soakServer is the nes server under test, on a loopback port that stays the same across
// restarts.
type soakServer struct {
	addr string // 127.0.0.1:PORT

	mu    sync.Mutex
	nes   *herald.Server
	http  *http.Server
	ln    net.Listener
	serve chan struct{} // closed when Serve has returned

	log *logCounter

	subscribes, unsubscribes atomic.Int64 // OnSubscribe and OnUnsubscribe of the storm's paths

	gone   sync.Mutex
	goneAt map[string]time.Time // remote address -> when its socket closed
}

func newSoakServer() (*soakServer, error) {
	s := &soakServer{goneAt: map[string]time.Time{}, log: newLogCounter()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.start(ln)
	return s, nil
}

func (s *soakServer) newNes() *herald.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`"ok"`)) })
	nes := herald.NewServer(mux, &herald.Options{
		SendQueueLimit:  sendQueueLimit,
		SendTimeout:     sendTimeout,
		MaxRequestBytes: maxRequestBytes,
		HelloTimeout:    helloTimeout,
		Logger:          slog.New(s.log),
		Heartbeat:       &herald.Heartbeat{Interval: heartbeatEvery, Timeout: heartbeatWait},
		Fallback: &fallback.Options{
			Grace:       grace,
			RetryMin:    100 * time.Millisecond,
			RetryMax:    time.Second,
			BufferBytes: bufferBytes,
			PollTimeout: pollTimeout,
		},
		OnDisconnection: func(sock *herald.Socket) {
			s.gone.Lock()
			s.goneAt[sock.RemoteAddr()] = time.Now()
			s.gone.Unlock()
		},
		OnMessage: func(ctx context.Context, _ *herald.Socket, m herald.RawMessage) (any, error) {
			return m, nil
		},
	})
	nes.Route("echo", "GET", "/echo")
	// The subscribe storm's paths: OnSubscribe takes up to 3 ms, as an application's lookup
	// would, so that one socket's subs and unsubs are processed at once; the two callbacks
	// are counted, to check that they pair.
	slowSub := &herald.SubscriptionOptions{
		OnSubscribe: func(context.Context, *herald.Socket, string, map[string]string) error {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			s.subscribes.Add(1)
			return nil
		},
		OnUnsubscribe: func(context.Context, *herald.Socket, string, map[string]string) { s.unsubscribes.Add(1) },
	}
	nes.Subscription("/soak/subchurn/{n}", slowSub)
	nes.Subscription("/soak/twice/{n}", slowSub)
	nes.Subscription("/soak/{phase}", nil)
	nes.Subscription("/soak/{phase}/{n}", nil)
	return nes
}

func (s *soakServer) start(ln net.Listener) {
	nes := s.newNes()
	hs := &http.Server{Handler: nes, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(sndbufListener{ln})
	}()
	s.mu.Lock()
	s.nes, s.http, s.ln, s.serve = nes, hs, ln, done
	s.mu.Unlock()
}

// Nes returns the nes server running now.
func (s *soakServer) Nes() *herald.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nes
}

// stop takes the server down as a crash would for its clients: the listener closes and every
// socket and connection with it.
func (s *soakServer) stop() {
	s.mu.Lock()
	nes, hs, ln, done := s.nes, s.http, s.ln, s.serve
	s.mu.Unlock()
	ln.Close()
	hs.Close()
	nes.Close()
	<-done
}

// restart stops the server, waits down, and serves a new nes server on the same address.
func (s *soakServer) restart(down time.Duration) error {
	s.stop()
	time.Sleep(down)
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.start(ln)
	return nil
}

func (s *soakServer) close() { s.stop() }

// sockets counts the open nes sockets.
func (s *soakServer) sockets() int {
	n := 0
	s.Nes().EachSocket(func(*herald.Socket) bool { n++; return true })
	return n
}

// subscribers counts the sockets subscribed to path.
func (s *soakServer) subscribers(path string) int {
	n := 0
	s.Nes().EachSubscriber(path, "", func(*herald.Socket) bool { n++; return true })
	return n
}

// closedAt says when the socket of a remote address closed.
func (s *soakServer) closedAt(addr string) (time.Time, bool) {
	s.gone.Lock()
	defer s.gone.Unlock()
	t, ok := s.goneAt[addr]
	return t, ok
}

func (s *soakServer) forgetClosed() {
	s.gone.Lock()
	clear(s.goneAt)
	s.gone.Unlock()
}

// sndbufListener gives accepted connections a small send buffer, so that a client that stops
// reading fills the kernel's buffers after kilobytes rather than megabytes and the server's
// own bounds (SendQueueLimit, BufferBytes) are what stop it.
type sndbufListener struct{ net.Listener }

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(serverSndBuf)
	}
	return c, err
}

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit (Go does so at start-up too since 1.19;
// this says it, and reports the limit).
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return uint64(lim.Cur), nil // int64 on some BSDs
}

var errStopped = errors.New("soak: stopped")
