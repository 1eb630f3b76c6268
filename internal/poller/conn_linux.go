package poller

import (
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a connection taken out of Go's poller and watched by this package's: a net.Conn
// whose blocking calls wait for the epoll loop, and which can be served without a goroutine
// while idle (Serve, Park).
//
// Read and Write may each be called by one goroutine at a time, and the two at once, as on
// any net.Conn; Close, CloseWrite, the deadline setters and SetTimer from any goroutine.
//
// A Conn is small on purpose (it is most of what an idle connection costs): its deadlines and
// timer live in the loop's heap, and its addresses are kept in place, not as net.Addr values.
type Conn struct {
	fd  int32
	gen uint32
	// refs counts the system calls in progress on fd; Close adds closedRefs and waits for the
	// count to drain, so that no call reaches a descriptor number that was closed and reused.
	refs  atomic.Int32
	state atomic.Int32 // serving state: unserved, running, parked, done

	rd, wr    direction
	timerWhen atomic.Int64 // the owner's timer (SetTimer), unix nanoseconds; 0: none
	timerIdx  int32        // its index in the loop's heap, -1 when not there
	port      uint16       // the peer's port, for TCP
	unix      bool
	nowait    bool // reads return ErrWouldBlock instead of waiting; owned by the reader
	owner     Runner
	ip        [16]byte // the peer's address, for TCP (IPv4 as IPv4-mapped IPv6)
}

const closedRefs = math.MinInt32

// Runner is what owns a served Conn: Run reads (on a worker goroutine of the loop, one Run at
// a time) and Timer is what SetTimer schedules (on a worker goroutine too).
type Runner interface {
	Run()
	Timer()
}

// direction is one direction's readiness, deadline and waiter.
type direction struct {
	wake  atomic.Pointer[chan struct{}]
	when  atomic.Int64 // the deadline, unix nanoseconds; 0: none
	idx   int32        // the deadline's index in the loop's heap, -1 when not there
	ready atomic.Bool  // the socket became ready since the last system call cleared it
}

// Serving states.
const (
	unserved int32 = iota
	running        // a goroutine runs the owner's Run, or is about to
	parked         // no goroutine: the next event starts one
	done           // the owner has finished with the connection
)

// NewConn takes over nc, a plain *net.TCPConn or *net.UnixConn: it duplicates the socket's
// descriptor, closes nc (the socket stays open through the duplicate) and registers the
// duplicate with the poller. net.Conn buffers nothing, so nothing is lost. On failure nc is
// left open and unchanged; the error is ErrUnsupported for connections of other kinds.
func NewConn(nc net.Conn) (*Conn, error) {
	c := &Conn{}
	switch nc.(type) {
	case *net.TCPConn:
		ap := nc.RemoteAddr().(*net.TCPAddr).AddrPort()
		c.ip, c.port = ap.Addr().As16(), ap.Port()
	case *net.UnixConn:
		c.unix = true
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
	c.fd = int32(fd)
	c.rd.idx, c.wr.idx, c.timerIdx = -1, -1, -1
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

// acquire counts a system call on fd, or reports false when c is closed.
func (c *Conn) acquire() bool {
	if c.refs.Add(1) < 0 {
		c.refs.Add(-1)
		return false
	}
	return true
}

func (c *Conn) release() { c.refs.Add(-1) }

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

// due handles a deadline or timer of c that the heap found due.
func (c *Conn) due(kind int8) {
	switch kind {
	case kindRead:
		c.rd.notify()
		c.kick()
	case kindWrite:
		c.wr.notify()
	case kindUser:
		if o := c.owner; o != nil && !c.closed() {
			theLoop.spawn(timerTask{o})
		}
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

// Serve makes c served by r: r.Run is called on a worker goroutine (one idle in the loop's
// pool, else a new one) now, and again whenever c needs attention after Run parked it (Park):
// bytes to read, the read deadline passing, or c closing. Only one Run goroutine exists at a
// time. Serve is called once.
func (c *Conn) Serve(r Runner) {
	c.owner = r
	c.state.Store(running)
	theLoop.spawn(r)
}

// Owner returns the Runner given to Serve, or nil.
func (c *Conn) Owner() Runner { return c.owner }

// Park is called by the Run goroutine when it has nothing more to do: a read in no-wait mode
// returned ErrWouldBlock. It reports true when c is now parked and the goroutine must return,
// false when something arrived meanwhile and the goroutine must carry on.
func (c *Conn) Park() bool {
	c.state.Store(parked)
	// An event that came after the read that would have blocked either sees parked (and starts
	// a goroutine) or is seen here: the two stores come before the two loads.
	if c.rd.ready.Load() || c.closed() || c.rd.passed() {
		return !c.state.CompareAndSwap(parked, running)
	}
	return true
}

// Finish marks c as done with by its Run goroutine: no event starts one again.
func (c *Conn) Finish() { c.state.Store(done) }

// kick starts a Run goroutine when c is parked.
func (c *Conn) kick() {
	if c.state.Load() == parked && c.state.CompareAndSwap(parked, running) {
		theLoop.spawn(c.owner)
	}
}

// SetNoWait turns no-wait mode on or off: a read that finds nothing returns ErrWouldBlock at
// once. Only the reading goroutine calls it.
func (c *Conn) SetNoWait(on bool) { c.nowait = on }

// SetTimer arranges for the owner's Timer to run, on a worker goroutine, after d; a
// timer already set is replaced. d <= 0 stops it.
func (c *Conn) SetTimer(d time.Duration) {
	if c.closed() {
		return
	}
	var when int64
	if d > 0 {
		when = time.Now().Add(d).UnixNano()
	}
	theLoop.timers.set(c, kindUser, when)
}

func (c *Conn) closed() bool { return c.refs.Load() < 0 }

// passed reports whether d's deadline has passed.
func (d *direction) passed() bool {
	dl := d.when.Load()
	return dl != 0 && time.Now().UnixNano() >= dl
}

// wait blocks until d may be ready, its deadline passes or c closes.
func (c *Conn) wait(d *direction) error {
	for {
		if c.closed() {
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
			d.wake.CompareAndSwap(nil, &nc)
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
		if !c.acquire() {
			return 0, c.opError("read", net.ErrClosed)
		}
		c.rd.ready.Store(false)
		n, err := syscall.Read(int(c.fd), p)
		c.release()
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
		if !c.acquire() {
			return written, c.opError("write", net.ErrClosed)
		}
		c.wr.ready.Store(false)
		n, err := syscall.Write(int(c.fd), p[written:])
		c.release()
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
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: c.network(), Addr: c.RemoteAddr(), Err: err}
}

func (c *Conn) network() string {
	if c.unix {
		return "unix"
	}
	return "tcp"
}

// Close unregisters c, closes its socket and wakes every goroutine waiting on it; a parked
// served connection gets a Run goroutine, which finds it closed.
func (c *Conn) Close() error {
	for {
		r := c.refs.Load()
		if r < 0 {
			return c.opError("close", net.ErrClosed)
		}
		if c.refs.CompareAndSwap(r, r+closedRefs) {
			break
		}
	}
	theLoop.remove(c)
	for c.refs.Load() != closedRefs {
		runtime.Gosched() // a nonblocking system call is finishing
	}
	err := syscall.Close(int(c.fd))
	for kind := range kindCount {
		if when, _ := c.slot(kind); when.Load() != 0 {
			theLoop.timers.set(c, kind, 0)
		}
	}
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
	if !c.acquire() {
		return c.opError("close", net.ErrClosed)
	}
	defer c.release()
	if err := syscall.Shutdown(int(c.fd), syscall.SHUT_WR); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// LocalAddr returns the local network address, asked of the socket (an empty address once it
// is closed).
func (c *Conn) LocalAddr() net.Addr {
	none := net.Addr(&net.TCPAddr{})
	if c.unix {
		none = &net.UnixAddr{Net: "unix"}
	}
	if !c.acquire() {
		return none
	}
	sa, err := syscall.Getsockname(int(c.fd))
	c.release()
	if err != nil {
		return none
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)))
	case *syscall.SockaddrInet6:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)))
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return none
}

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr {
	if c.unix {
		a := &net.UnixAddr{Net: "unix"}
		if c.acquire() {
			if sa, err := syscall.Getpeername(int(c.fd)); err == nil {
				if u, ok := sa.(*syscall.SockaddrUnix); ok {
					a.Name = u.Name
				}
			}
			c.release()
		}
		return a
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(c.ip).Unmap(), c.port))
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline, as on net.Conn. A served parked connection whose
// read deadline passes gets a Run goroutine, which finds reads failing with a timeout.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.setDeadline(&c.rd, kindRead, t)
	return nil
}

// SetWriteDeadline sets the write deadline, as on net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.setDeadline(&c.wr, kindWrite, t)
	return nil
}

// setDeadline sets d's deadline (of kind) to t, in the loop's heap while it is in the future.
func (c *Conn) setDeadline(d *direction, kind int8, t time.Time) {
	if c.closed() {
		return
	}
	var when int64
	if !t.IsZero() {
		when = t.UnixNano()
	}
	if when != 0 && when <= time.Now().UnixNano() {
		if d.when.Load() != 0 {
			theLoop.timers.set(c, kind, 0)
		}
		d.when.Store(when)
		c.due(kind)
		return
	}
	if when == d.when.Load() {
		return
	}
	theLoop.timers.set(c, kind, when)
}

// slot returns where the deadline or timer of kind is kept: its time and heap index.
func (c *Conn) slot(kind int8) (*atomic.Int64, *int32) {
	switch kind {
	case kindRead:
		return &c.rd.when, &c.rd.idx
	case kindWrite:
		return &c.wr.when, &c.wr.idx
	}
	return &c.timerWhen, &c.timerIdx
}

// Raw returns c's raw access, as syscall.RawConn: Read calls its function with the descriptor
// until it returns true, waiting for the socket to be readable in between (or, in no-wait
// mode, returning ErrWouldBlock). Write does the same for writing.
func (c *Conn) Raw() syscall.RawConn { return (*rawConn)(c) }

type rawConn Conn

func (r *rawConn) Control(f func(fd uintptr)) error {
	c := (*Conn)(r)
	if !c.acquire() {
		return net.ErrClosed
	}
	defer c.release()
	f(uintptr(c.fd))
	return nil
}

// Read is syscall.RawConn's Read: f until it reports done, waiting for bytes between tries
// (or ErrWouldBlock, with SetNoWait).
func (r *rawConn) Read(f func(fd uintptr) bool) error {
	c := (*Conn)(r)
	return c.rawDo(&c.rd, c.nowait, f)
}

// Write is syscall.RawConn's Write: f until it reports done, waiting for room between tries.
func (r *rawConn) Write(f func(fd uintptr) bool) error {
	c := (*Conn)(r)
	return c.rawDo(&c.wr, false, f)
}

// rawDo calls f with the descriptor until f reports done, waiting on d between tries, or
// returning ErrWouldBlock instead when nowait is set.
func (c *Conn) rawDo(d *direction, nowait bool, f func(fd uintptr) bool) error {
	for {
		if d.passed() {
			return os.ErrDeadlineExceeded
		}
		if !c.acquire() {
			return net.ErrClosed
		}
		d.ready.Store(false)
		ok := f(uintptr(c.fd))
		c.release()
		if ok {
			return nil
		}
		if nowait {
			return ErrWouldBlock
		}
		if err := c.wait(d); err != nil {
			return err
		}
	}
}
