package poller

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a connection taken out of Go's poller and watched by this package's: a net.Conn
// whose blocking calls wait for the epoll loop, and which can be served without a goroutine
// while idle (Serve, Park).
//
// Read and Write may each be called by one goroutine at a time, and the two at once, as on
// any net.Conn; Close, CloseWrite and the deadline setters from any goroutine.
type Conn struct {
	fd    int
	gen   uint32
	loop  *loop
	laddr net.Addr
	raddr net.Addr

	// life is held shared around every system call on fd and exclusively to close it, so that
	// no call ever reaches a descriptor number that was closed and reused.
	life   sync.RWMutex
	closed atomic.Bool

	rd, wr direction

	mu sync.Mutex // guards the deadline timers

	// serving: set by Serve. state says whether a goroutine is running run.
	state  atomic.Int32
	run    func()
	nowait bool // reads return ErrWouldBlock instead of waiting; owned by the reader

	raw rawConn
}

// direction is one direction's readiness, deadline and waiter.
type direction struct {
	ready    atomic.Bool  // the socket became ready since the last system call cleared it
	deadline atomic.Int64 // unix nanoseconds, 0: none
	wake     atomic.Pointer[chan struct{}]
	timer    *time.Timer // guarded by Conn.mu
}

// Serving states.
const (
	unserved int32 = iota
	running        // a goroutine runs the owner's function, or is about to
	parked         // no goroutine: the next event starts one
	done           // the owner has finished with the connection
)

// NewConn takes over nc, a plain *net.TCPConn or *net.UnixConn: it duplicates the socket's
// descriptor, closes nc (the socket stays open through the duplicate) and registers the
// duplicate with the poller. Whatever nc had buffered is nothing: net.Conn buffers nothing.
// On failure nc is left open and unchanged, and the error is ErrUnsupported for connections
// of other kinds.
func NewConn(nc net.Conn) (*Conn, error) {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil, ErrUnsupported
	}
	l, err := getLoop()
	if err != nil {
		return nil, err
	}
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = dupCloexec(int(s))
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, os.NewSyscallError("fcntl", dupErr)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	c := &Conn{fd: fd, loop: l, laddr: nc.LocalAddr(), raddr: nc.RemoteAddr()}
	c.raw.c = c
	if err := l.add(c); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	_ = nc.Close()
	return c, nil
}

func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// event handles what the loop reported for c.
func (c *Conn) event(ev uint32) {
	if ev&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		c.rd.ready.Store(true)
		c.rd.notify()
		c.kick()
	}
	if ev&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		c.wr.ready.Store(true)
		c.wr.notify()
	}
}

// notify wakes the goroutine waiting on d, if any.
func (d *direction) notify() {
	if ch := d.wake.Load(); ch != nil {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

// Serve makes c served: run is called on a new goroutine now, and again whenever c needs
// attention after run parked it (Park): bytes to read, the read deadline passing, or c closing.
// Only one run goroutine exists at a time. Serve is called once.
func (c *Conn) Serve(run func()) {
	c.run = run
	c.state.Store(running)
	go run()
}

// Park is called by the run goroutine when it has nothing more to do: a read in no-wait mode
// returned ErrWouldBlock. It reports true when c is now parked and the goroutine must return,
// false when something arrived meanwhile and the goroutine must carry on.
func (c *Conn) Park() bool {
	c.state.Store(parked)
	// An event that came after the read that would have blocked either sees parked (and starts
	// a goroutine) or is seen here: the two stores come before the two loads.
	if c.rd.ready.Load() || c.closed.Load() || c.rd.passed() {
		return !c.state.CompareAndSwap(parked, running)
	}
	return true
}

// Finish marks c as done with by its run goroutine: no event starts one again.
func (c *Conn) Finish() { c.state.Store(done) }

// kick starts a run goroutine when c is parked.
func (c *Conn) kick() {
	if c.state.Load() == parked && c.state.CompareAndSwap(parked, running) {
		go c.run()
	}
}

// SetNoWait turns no-wait mode on or off: a read that finds nothing returns ErrWouldBlock at
// once. Only the reading goroutine calls it.
func (c *Conn) SetNoWait(on bool) { c.nowait = on }

// passed reports whether d's deadline has passed.
func (d *direction) passed() bool {
	dl := d.deadline.Load()
	return dl != 0 && time.Now().UnixNano() >= dl
}

// wait blocks until d may be ready, its deadline passes or c closes.
func (c *Conn) wait(d *direction) error {
	for {
		if c.closed.Load() {
			return net.ErrClosed
		}
		if d.ready.Swap(false) {
			return nil
		}
		if d.passed() {
			return os.ErrDeadlineExceeded
		}
		ch := d.wake.Load()
		if ch == nil {
			nc := make(chan struct{}, 1)
			if !d.wake.CompareAndSwap(nil, &nc) {
				continue
			}
			continue // look again now that notify can find the channel
		}
		<-*ch
	}
}

// Read reads from the socket, waiting for bytes as net.Conn does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.rd.passed() {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		c.life.RLock()
		if c.closed.Load() {
			c.life.RUnlock()
			return 0, c.opError("read", net.ErrClosed)
		}
		c.rd.ready.Store(false)
		n, err := syscall.Read(c.fd, p)
		c.life.RUnlock()
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if c.nowait {
				return 0, ErrWouldBlock
			}
			if err := c.wait(&c.rd); err != nil {
				return 0, c.opError("read", err)
			}
			continue
		case err != nil:
			return 0, c.opError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes p whole, waiting for room as net.Conn does.
func (c *Conn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		if c.wr.passed() {
			return written, c.opError("write", os.ErrDeadlineExceeded)
		}
		c.life.RLock()
		if c.closed.Load() {
			c.life.RUnlock()
			return written, c.opError("write", net.ErrClosed)
		}
		c.wr.ready.Store(false)
		n, err := syscall.Write(c.fd, p[written:])
		c.life.RUnlock()
		if n > 0 {
			written += n
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if err := c.wait(&c.wr); err != nil {
				return written, c.opError("write", err)
			}
		case err != nil:
			return written, c.opError("write", err)
		}
	}
	return written, nil
}

func (c *Conn) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: c.laddr.Network(), Source: c.laddr, Addr: c.raddr, Err: err}
}

// Close unregisters c, closes its socket and wakes every goroutine waiting on it; a parked
// served connection gets a run goroutine, which finds it closed.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	c.loop.remove(c)
	c.life.Lock()
	err := syscall.Close(c.fd)
	c.life.Unlock()
	c.mu.Lock()
	for _, d := range [2]*direction{&c.rd, &c.wr} {
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
	}
	c.mu.Unlock()
	c.rd.notify()
	c.wr.notify()
	c.kick()
	if err != nil {
		return c.opError("close", err)
	}
	return nil
}

// CloseWrite shuts down the writing side of the socket (a TCP FIN).
func (c *Conn) CloseWrite() error {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	if err := syscall.Shutdown(c.fd, syscall.SHUT_WR); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline, as on net.Conn. A served parked connection whose
// read deadline passes gets a run goroutine, which finds reads failing with a timeout.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.setDeadline(&c.rd, t, c.readDeadlinePassed)
	return nil
}

// SetWriteDeadline sets the write deadline, as on net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.setDeadline(&c.wr, t, c.wr.notify)
	return nil
}

func (c *Conn) readDeadlinePassed() {
	c.rd.notify()
	c.kick()
}

// setDeadline sets d's deadline to t and arranges for fire to run when it passes. A timer
// exists only while a deadline is set in the future.
func (c *Conn) setDeadline(d *direction, t time.Time, fire func()) {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return
	}
	if t.IsZero() {
		d.deadline.Store(0)
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
		c.mu.Unlock()
		return
	}
	d.deadline.Store(t.UnixNano())
	wait := time.Until(t)
	if wait <= 0 {
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
		c.mu.Unlock()
		fire()
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, fire)
	} else {
		d.timer.Reset(wait)
	}
	c.mu.Unlock()
}

// Raw returns c's raw access, as syscall.RawConn: Read calls its function with the descriptor
// until it returns true, waiting for the socket to be readable in between (or, in no-wait
// mode, returning ErrWouldBlock). Write does the same for writing.
func (c *Conn) Raw() syscall.RawConn { return &c.raw }

type rawConn struct{ c *Conn }

func (r *rawConn) Control(f func(fd uintptr)) error {
	c := r.c
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed.Load() {
		return net.ErrClosed
	}
	f(uintptr(c.fd))
	return nil
}

func (r *rawConn) Read(f func(fd uintptr) bool) error {
	c := r.c
	for {
		if c.rd.passed() {
			return os.ErrDeadlineExceeded
		}
		c.life.RLock()
		if c.closed.Load() {
			c.life.RUnlock()
			return net.ErrClosed
		}
		c.rd.ready.Store(false)
		ok := f(uintptr(c.fd))
		c.life.RUnlock()
		if ok {
			return nil
		}
		if c.nowait {
			return ErrWouldBlock
		}
		if err := c.wait(&c.rd); err != nil {
			return err
		}
	}
}

func (r *rawConn) Write(f func(fd uintptr) bool) error {
	c := r.c
	for {
		if c.wr.passed() {
			return os.ErrDeadlineExceeded
		}
		c.life.RLock()
		if c.closed.Load() {
			c.life.RUnlock()
			return net.ErrClosed
		}
		c.wr.ready.Store(false)
		ok := f(uintptr(c.fd))
		c.life.RUnlock()
		if ok {
			return nil
		}
		if err := c.wait(&c.wr); err != nil {
			return err
		}
	}
}
