package fanload

import (
	"errors"
	"syscall"
	"time"
)

// Poller is one epoll set over taken-over connections, each known by its index (the order
// of [Poller.Add]).
type Poller struct {
	ep    int
	conns []*Conn
	byFD  map[int32]int
	evs   []syscall.EpollEvent
}

// NewPoller returns an empty Poller that takes up to events ready connections per wait.
func NewPoller(events int) (*Poller, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &Poller{ep: ep, byFD: map[int32]int{}, evs: make([]syscall.EpollEvent, events)}, nil
}

// Add adds c to the set and returns its index. The Poller does not close c.
func (p *Poller) Add(c *Conn) (int, error) {
	if err := syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, c.fd,
		&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}); err != nil {
		return 0, err
	}
	i := len(p.conns)
	p.conns = append(p.conns, c)
	p.byFD[int32(c.fd)] = i
	return i, nil
}

// Conn returns the connection of index i.
func (p *Poller) Conn(i int) *Conn { return p.conns[i] }

// Close closes the epoll set (not the connections).
func (p *Poller) Close() { _ = syscall.Close(p.ep) }

// Until reads the ready connections, calling handle with each whole message and its
// connection's index, until done returns true (true) or deadline passes (false).
func (p *Poller) Until(deadline time.Time, done func() bool, handle func(i int, m []byte) error) (bool, error) {
	for !done() {
		wait := time.Until(deadline)
		if wait <= 0 {
			return false, nil
		}
		n, err := syscall.EpollWait(p.ep, p.evs, int(wait/time.Millisecond)+1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return false, err
		}
		for _, e := range p.evs[:n] {
			i := p.byFD[e.Fd]
			if err := p.conns[i].ReadAll(func(m []byte) error { return handle(i, m) }); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}
