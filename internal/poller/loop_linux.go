package poller

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loop is the process's epoll instance and the goroutine that waits on it. The goroutine runs
// while at least one Conn is registered and returns after the last is removed, so that a
// process (or a test) that closes its connections keeps no goroutine behind.
type loop struct {
	epfd int
	rc   syscall.RawConn // epfd as Go's poller holds it
	file *os.File        // keeps epfd open (and rc valid) for the life of the process
	wake int             // an eventfd that wakes the loop when it must look at its count

	mu      sync.Mutex
	conns   []*Conn // by descriptor
	count   int
	running bool
	gen     uint32 // the registration number of the latest Add

	timers timers // every Conn's deadlines and timer

	work chan task                     // hands a task to a worker waiting for one
	quit atomic.Pointer[chan struct{}] // closed when the loop's goroutine stops
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
		if err := syscall.SetNonblock(epfd, true); err != nil {
			syscall.Close(epfd)
			syscall.Close(wake)
			theLoopErr = fmt.Errorf("poller: epoll instance: %w", err)
			return
		}
		f := os.NewFile(uintptr(epfd), "herald-epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			syscall.Close(wake)
			theLoopErr = fmt.Errorf("poller: epoll instance: %w", err)
			return
		}
		theLoop = &loop{epfd: epfd, rc: rc, file: f, wake: wake, work: make(chan task)}
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
		q := make(chan struct{})
		l.quit.Store(&q)
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

// run waits for events and hands each to its Conn, until no Conn is registered. It waits in
// Go's own poller, where the epoll instance is registered as one more descriptor: a wake-up
// is a goroutine being readied, as for any socket, not a thread coming back from a blocking
// epoll_wait.
func (l *loop) run() {
	var events [128]syscall.EpollEvent
	stop := false
	for !stop {
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				n, err := syscall.EpollWait(int(fd), events[:], 0)
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					panic(fmt.Sprintf("poller: epoll_wait: %v", err)) // only a bad descriptor gives this
				}
				l.dispatch(events[:n])
				if n < len(events) {
					break
				}
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.count == 0 {
				l.running = false
				close(*l.quit.Load()) // idle workers leave now, not after workerIdle
				stop = true
				return true
			}
			return false // wait until the epoll instance has events again
		})
		if err != nil {
			panic(fmt.Sprintf("poller: waiting for the epoll instance: %v", err))
		}
	}
}

// dispatch hands each event to its Conn.
func (l *loop) dispatch(events []syscall.EpollEvent) {
	for i := range events {
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
}

// task is work for a worker: a Runner's Run, or its Timer (timerTask).
type task interface{ Run() }

// timerTask runs a Runner's Timer as a task.
type timerTask struct{ r Runner }

func (t timerTask) Run() { t.r.Timer() }

// workerIdle is how long a worker waits for another task before it returns.
const workerIdle = 200 * time.Millisecond

// spawn runs t on a worker: one waiting for work if there is one, else a new goroutine. A
// worker that finished a task waits workerIdle for the next before it returns, so that a busy
// server reuses goroutines whose stacks have already grown (a new goroutine per wake-up
// spends much of its time growing its stack), while idle connections keep none: the workers
// are the process's, not the connections', and leave when there is nothing to do.
func (l *loop) spawn(t task) {
	select {
	case l.work <- t:
		return
	default:
	}
	go l.worker(t, *l.quit.Load())
}

func (l *loop) worker(t task, quit chan struct{}) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.Run()
		idle.Reset(workerIdle)
		select {
		case t = <-l.work:
		case <-idle.C:
			return
		case <-quit:
			return
		}
	}
}
