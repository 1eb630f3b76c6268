package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// dialers is how many subscriber handshakes are in progress at once.
const dialers = 32

// runFanout is mode fanout: see the package comment.
//
// The connections are opened with the Go net package; then the measured part
// reads them all from one loop on epoll, on raw non-blocking descriptors,
// rather than from a goroutine per connection: on this kind of machine a Go
// reader per connection costs more per message (about 8 µs) than a server's
// own write(2) to that socket (about 5 µs), so it, not the server, would set
// the time to the last subscriber. One loop also sends the publishes, so no
// other goroutine needs to run in the measured part.
func runFanout(addr, path, topic string, subs, pubs, warmupPubs int, timeout time.Duration) error {
	var raws []*rawConn
	defer func() {
		for _, r := range raws {
			r.close()
		}
	}()

	// Open and subscribe the subscribers, a few handshakes at a time.
	cs, err := wsraw.DialAll(subs, dialers, func(int) (*conn, error) {
		c, err := dial(addr, path, timeout)
		if err != nil {
			return nil, err
		}
		if err = hello(c); err == nil {
			err = subscribe(c, topic)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return fmt.Errorf("opening subscribers: %w", err)
	}
	defer func() {
		for _, c := range cs { // those not yet handed over to the epoll loop
			c.Close()
		}
	}()
	pub, err := dial(addr, path, timeout)
	if err != nil {
		return err
	}
	cs = append(cs, pub)
	if err := hello(pub); err != nil {
		return fmt.Errorf("publisher hello: %w", err)
	}

	// Hand every connection over to the epoll loop.
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer syscall.Close(ep)
	byFD := map[int32]*rawConn{}
	for i, c := range cs {
		r, err := c.raw()
		if err != nil {
			return err
		}
		r.publisher = i == len(cs)-1
		raws = append(raws, r)
		byFD[int32(r.fd)] = r
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, r.fd,
			&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(r.fd)}); err != nil {
			return err
		}
	}
	cs = nil
	pubRaw := raws[len(raws)-1]
	fmt.Printf("open %d\n", subs)

	wantPath := []byte(`"path":` + strconv.Quote(topic))
	var (
		seq      int64 // the publication being delivered
		got      int   // subscribers that have read it
		lastAt   time.Time
		pubID    int64 // the id of its publish request
		gotReply bool
		evs      = make([]syscall.EpollEvent, 256)
		lat      []time.Duration
		t0       time.Time
		cpu0     float64
	)
	// handle processes one whole message from r.
	handle := func(r *rawConn, m []byte) error {
		switch string(field(m, `"type":"`)) {
		case "pub":
			s, ok := number(m, `"seq":`)
			if r.publisher || !ok || !bytes.Contains(m, wantPath) || s != seq || s <= r.lastSeq {
				return fmt.Errorf("subscriber: unexpected publication %.200s (current seq %d, last %d)", m, seq, r.lastSeq)
			}
			r.lastSeq = s
			if got++; got == subs {
				lastAt = time.Now()
			}
		case "request":
			id, ok := number(m, `"id":`)
			if !r.publisher || !ok || id != pubID || gotReply ||
				!bytes.Contains(m, []byte(`"statusCode":200`)) || !bytes.Contains(m, []byte(`"ok":true`)) {
				return fmt.Errorf("publisher: unexpected reply %.200s (publish id %d)", m, pubID)
			}
			gotReply = true
		case "ping":
			return r.pong()
		default:
			return fmt.Errorf("unexpected message %.200s", m)
		}
		return nil
	}
	for i := 1; i <= warmupPubs+pubs; i++ {
		if i == warmupPubs+1 {
			t0, cpu0 = time.Now(), wsraw.CPUSeconds()
			fmt.Println("start")
		}
		seq, got, gotReply = int64(i), 0, false
		sent := time.Now()
		pubID, err = pubRaw.send("request", publishBody(topic, seq))
		if err != nil {
			return fmt.Errorf("publish %d: %w", seq, err)
		}
		deadline := sent.Add(timeout)
		for got < subs || !gotReply {
			wait := time.Until(deadline)
			if wait <= 0 {
				return fmt.Errorf("publish %d: %d of %d subscribers had it after %v (reply: %v)",
					seq, got, subs, timeout, gotReply)
			}
			n, err := syscall.EpollWait(ep, evs, int(wait/time.Millisecond)+1)
			if err != nil {
				if errors.Is(err, syscall.EINTR) {
					continue
				}
				return err
			}
			for _, e := range evs[:n] {
				r := byFD[e.Fd]
				if err := r.readAll(func(m []byte) error { return handle(r, m) }); err != nil {
					return err
				}
			}
		}
		if i > warmupPubs {
			lat = append(lat, lastAt.Sub(sent))
		}
	}
	t1, cpu1 := time.Now(), wsraw.CPUSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	printLatencies(lat)
	return nil
}

// printLatencies prints the "lat" line: each publish's time to its last
// subscriber, in µs.
func printLatencies(lat []time.Duration) {
	var sb strings.Builder
	sb.WriteString("lat")
	for _, d := range lat {
		fmt.Fprintf(&sb, " %d", d.Microseconds())
	}
	fmt.Println(sb.String())
}

// rawConn is a connection taken over from the net package: a non-blocking
// descriptor read by the epoll loop, and the bytes of a frame not yet
// complete.
type rawConn struct {
	fd        int
	pending   []byte // bytes read but not yet parsed
	frag      []byte // a fragmented message being assembled
	out       []byte
	mask      [4]byte
	nextID    int64
	lastSeq   int64
	publisher bool
	buf       [4096]byte
}

// raw hands c's socket over to a rawConn: it duplicates the descriptor and
// closes c, which takes the socket out of the Go runtime's poller. Nothing
// may be buffered in c: the server sends nothing unasked before a publish.
func (c *conn) raw() (*rawConn, error) {
	if n := c.Buffered(); n > 0 {
		return nil, fmt.Errorf("%d unread bytes before the publishes", n)
	}
	f, err := c.NetConn().File()
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, err
	}
	_ = c.NetConn().Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return &rawConn{fd: fd, mask: c.Mask, nextID: c.nextID}, nil
}

// close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT).
func (r *rawConn) close() {
	_ = syscall.SetsockoptLinger(r.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	_ = syscall.Close(r.fd)
}

// readAll reads what the socket has and calls handle for each whole
// message in it.
func (r *rawConn) readAll(handle func([]byte) error) error {
	n, err := syscall.Read(r.fd, r.buf[:])
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return nil
	case err != nil:
		return err
	case n == 0:
		return errors.New("the server closed a connection")
	}
	b := r.buf[:n]
	if len(r.pending) > 0 {
		r.pending = append(r.pending, b...)
		b = r.pending
	}
	for {
		used, err := r.frame(b, handle)
		if err != nil {
			return err
		}
		if used == 0 {
			break
		}
		b = b[used:]
	}
	if len(b) > maxMessage {
		return fmt.Errorf("frame over %d bytes", maxMessage)
	}
	r.pending = append(r.pending[:0], b...)
	return nil
}

// frame parses one frame at the start of b and returns how many bytes it
// took, or 0 if b does not hold a whole frame yet.
func (r *rawConn) frame(b []byte, handle func([]byte) error) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
		return 0, errors.New("server frame with RSV bits or a mask")
	}
	h, n := 2, int(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil
		}
		h, n = 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > maxMessage {
			return 0, fmt.Errorf("frame of %d bytes", v)
		}
		h, n = 10, int(v)
	}
	if len(b) < h+n {
		return 0, nil
	}
	p := b[h : h+n]
	switch {
	case op == wsraw.OpPing:
		return h + n, r.write(wsraw.AppendFrame(r.out[:0], wsraw.Fin|wsraw.OpPong, p, r.mask))
	case op == wsraw.OpPong:
		return h + n, nil
	case op == wsraw.OpClose:
		return 0, fmt.Errorf("server closed a connection: %q", p)
	case op == wsraw.OpText && fin && r.frag == nil:
		return h + n, handle(p)
	case op == wsraw.OpText && r.frag == nil:
		r.frag = append([]byte{}, p...)
	case op == wsraw.OpContinuation && r.frag != nil:
		r.frag = append(r.frag, p...)
		if len(r.frag) > maxMessage {
			return 0, fmt.Errorf("message over %d bytes", maxMessage)
		}
		if fin {
			m := r.frag
			r.frag = nil
			return h + n, handle(m)
		}
	default:
		return 0, fmt.Errorf("unexpected frame: opcode %#x, fin %v", op, fin)
	}
	return h + n, nil
}

// send writes one nes message, as conn.send does.
func (r *rawConn) send(typ string, body func(b []byte) []byte) (int64, error) {
	id := r.nextID
	r.nextID++
	r.out = appendMessage(r.out[:0], r.mask, typ, id, body)
	return id, r.write(r.out)
}

// pong answers a nes heartbeat ping.
func (r *rawConn) pong() error {
	_, err := r.send("ping", nil)
	return err
}

// write writes b whole; the socket is non-blocking, so it waits for room
// (briefly: the benchmark's messages are small and the socket buffers big).
func (r *rawConn) write(b []byte) error {
	for deadline := time.Now().Add(10 * time.Second); len(b) > 0; {
		n, err := syscall.Write(r.fd, b)
		if errors.Is(err, syscall.EAGAIN) {
			if time.Now().After(deadline) {
				return errors.New("write blocked for 10s")
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
