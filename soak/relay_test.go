//go:build unix

package soak

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// relay forwards TCP connections to the server and plays the network's part in the faults: it
// stalls (stops taking what the server sends, as a client that stops reading) and resets (an
// RST both ways, as a client whose process was killed or whose network went away). The
// server sees the relay's outgoing addresses; addrs keeps them so that the suite can tell
// which server sockets were the relay's clients.
type relay struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed when a stall ends
	pairs   map[*pair]struct{}
	addrs   map[string]bool
	closed  bool
	wg      sync.WaitGroup
	refused bool
}

type pair struct {
	down, up *net.TCPConn
	ended    atomic.Int32 // directions that ended cleanly
}

func newRelay(upstream string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, upstream: upstream, pairs: map[*pair]struct{}{}, addrs: map[string]bool{}, resume: make(chan struct{})}
	close(r.resume)
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// rcvbufDialer connects with a small receive buffer, set before the handshake so that the
// window stays small: a stalled relay then holds kilobytes, not megabytes.
var rcvbufDialer = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
}}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		refused := r.refused
		r.mu.Unlock()
		if refused {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			continue
		}
		up, err := rcvbufDialer.DialContext(context.Background(), "tcp", r.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p := &pair{down: c.(*net.TCPConn), up: up.(*net.TCPConn)}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			p.down.Close()
			p.up.Close()
			return
		}
		r.pairs[p] = struct{}{}
		r.addrs[up.LocalAddr().String()] = true
		r.wg.Add(2)
		r.mu.Unlock()
		go r.copy(p, p.up, p.down, false)
		go r.copy(p, p.down, p.up, true)
	}
}

// copy forwards one direction; downstream (server to client) waits while the relay is stalled.
// A clean end of one direction is passed on as a half-close; the pair closes when both have
// ended, or at once on an error.
func (r *relay) copy(p *pair, dst, src *net.TCPConn, downstream bool) {
	defer r.wg.Done()
	buf := make([]byte, 16<<10)
	for {
		if downstream {
			r.mu.Lock()
			resume := r.resume
			r.mu.Unlock()
			<-resume
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err == io.EOF {
			dst.CloseWrite()
			if p.ended.Add(1) == 2 {
				r.drop(p, false)
			}
			return
		}
		if err != nil {
			r.drop(p, false)
			return
		}
	}
}

// drop closes a pair, with an RST when reset.
func (r *relay) drop(p *pair, reset bool) {
	r.mu.Lock()
	delete(r.pairs, p)
	r.mu.Unlock()
	if reset {
		p.down.SetLinger(0)
		p.up.SetLinger(0)
	}
	p.down.Close()
	p.up.Close()
}

// stall stops (true) or resumes (false) forwarding what the server sends.
func (r *relay) stall(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on == r.stalled {
		return
	}
	r.stalled = on
	if on {
		r.resume = make(chan struct{})
	} else {
		close(r.resume)
	}
}

// vanish resets every connection and, from now on, every new one: the clients behind the
// relay are gone without a word.
func (r *relay) vanish() {
	r.mu.Lock()
	r.refused = true
	ps := make([]*pair, 0, len(r.pairs))
	for p := range r.pairs {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		r.drop(p, true)
	}
}

// isClient says whether addr, a socket's remote address on the server, came through the relay.
func (r *relay) isClient(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[addr]
}

// close resets everything and waits for the relay's goroutines.
func (r *relay) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.ln.Close()
	r.vanish()
	r.stall(false)
	r.wg.Wait()
}
