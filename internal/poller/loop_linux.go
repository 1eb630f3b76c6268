package poller

import (
	"fmt"
	"sync"
	"syscall"
)

// loop is the process's epoll instance and the goroutine that waits on it. The goroutine runs
// while at least one Conn is registered and returns after the last is removed, so that a
// process (or a test) that closes its connections keeps no goroutine behind.
type loop struct {
	epfd int
	wake int // an eventfd that interrupts epoll_wait when the loop must look at its count

	mu      sync.Mutex
	conns   []*Conn // by descriptor
	count   int
	running bool
	gen     uint32 // the registration number of the latest Add

	timers timers // every Conn's deadlines and timer
}

var (
	theLoopOnce sync.Once
	theLoop     *loop
	theLoopErr  error
)

// getLoop returns the process's loop, making its epoll instance on first use. The instance
// lives as long as the process; its goroutine only while connections are registered.
func getLoop() (*loop, error) {
	theLoopOnce.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			theLoopErr = fmt.Errorf("poller: epoll_create1: %w", err)
			return
		}
		r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if errno != 0 {
			syscall.Close(epfd)
			theLoopErr = fmt.Errorf("poller: eventfd2: %w", errno)
			return
		}
		wake := int(r)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wake)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wake, &ev); err != nil {
			syscall.Close(epfd)
			syscall.Close(wake)
			theLoopErr = fmt.Errorf("poller: epoll_ctl: %w", err)
			return
		}
		theLoop = &loop{epfd: epfd, wake: wake}
	})
	return theLoop, theLoopErr
}

// edge is what every Conn is registered for: readable, writable and the peer's half-close,
// edge-triggered, so that a connection is reported once per change, not once per wait.
// (EPOLLET is 1<<31, which the syscall package declares as a negative int.)
const edge = syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | 1<<31

// add registers c, starting the loop's goroutine if it is not running.
func (l *loop) add(c *Conn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	c.gen = l.gen
	fd := int(c.fd)
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, max(64, len(l.conns)))...)
	}
	l.conns[fd] = c
	ev := syscall.EpollEvent{Events: uint32(edge), Fd: c.fd, Pad: int32(c.gen)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.conns[fd] = nil
		return fmt.Errorf("poller: epoll_ctl: %w", err)
	}
	l.count++
	if !l.running {
		l.running = true
		go l.run()
	}
	return nil
}

// remove unregisters c, whose descriptor is still open, and lets the goroutine stop when c
// was the last.
func (l *loop) remove(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fd := int(c.fd)
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	if fd < len(l.conns) && l.conns[fd] == c {
		l.conns[fd] = nil
	}
	l.count--
	if l.count == 0 {
		var one = [8]byte{1}
		_, _ = syscall.Write(l.wake, one[:])
	}
}

// lookup returns the Conn an event is for, or nil when it was removed (and its descriptor
// perhaps reused) since the event was reported.
func (l *loop) lookup(fd int32, gen int32) *Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(fd) >= len(l.conns) {
		return nil
	}
	c := l.conns[fd]
	if c == nil || int32(c.gen) != gen {
		return nil
	}
	return c
}

// run waits for events and hands each to its Conn, until no Conn is registered.
func (l *loop) run() {
	var events [128]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(l.epfd, events[:], -1)
		if err != nil && err != syscall.EINTR {
			panic(fmt.Sprintf("poller: epoll_wait: %v", err)) // only a bad descriptor gives this
		}
		for i := range n {
			ev := &events[i]
			if int(ev.Fd) == l.wake {
				var buf [8]byte
				_, _ = syscall.Read(l.wake, buf[:])
				continue
			}
			if c := l.lookup(ev.Fd, ev.Pad); c != nil {
				c.event(ev.Events)
			}
		}
		l.mu.Lock()
		if l.count == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
}
