// Command load is the broadcast benchmark's load client. It opens -conns WebSocket
// connections (bench/internal/wsraw, -dialers handshakes at a time), prints "open N", then
// reads them all from one loop on epoll, on raw non-blocking descriptors (a goroutine per
// connection would cost the client more per message than the server's write costs the
// server). The first connection, the publisher, sends one binary message of -size bytes at a
// time: its first 8 bytes are a sequence number. The server broadcasts it to every
// connection, the publisher included, and the next message goes only once all -conns have
// it. After -warmup unmeasured broadcasts it prints
//
//	start
//	stop pubs=N secs=S cpu=C
//	lat T1 T2 ...
//
// around -pubs measured ones: cpu is the client's own user+system seconds, and each Ti is a
// broadcast's time in µs from just before its message was written to the moment the last
// connection had read it whole. Every message is checked: its type, length, sequence number
// (in order on every connection) and fill bytes. Pings are answered. Connections are closed
// with SO_LINGER 0.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	var (
		addr    = flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
		path    = flag.String("path", "/", "request path")
		conns   = flag.Int("conns", 10000, "connections, the publisher included")
		size    = flag.Int("size", 256, "message size in bytes (at least 8)")
		pubs    = flag.Int("pubs", 50, "measured broadcasts")
		warmup  = flag.Int("warmup", 5, "unmeasured broadcasts first")
		dialers = flag.Int("dialers", 64, "handshakes in progress at once")
		timeout = flag.Duration("timeout", 30*time.Second, "the longest a broadcast may take to reach everyone")
	)
	flag.Parse()
	wsraw.Main("broadcast", map[string]func() error{
		"broadcast": func() error { return run(*addr, *path, *conns, *size, *pubs, *warmup, *dialers, *timeout) },
	})
}

// fill is the byte every message carries after its sequence number.
const fill = 'x'

func run(addr, path string, conns, size, pubs, warmup, dialers int, timeout time.Duration) error {
	if conns < 1 || size < 8 || pubs < 1 || warmup < 0 {
		return errors.New("need -conns and -pubs above zero, -size of 8 or more")
	}
	cs, err := wsraw.DialAll(conns, dialers, func(int) (*wsraw.Conn, error) {
		return wsraw.Dial(addr, path, &wsraw.Options{Timeout: 20 * time.Second})
	})
	if err != nil {
		return fmt.Errorf("opening %d connections: %w", conns, err)
	}
	var raws []*rawConn
	defer func() {
		for _, r := range raws {
			r.close()
		}
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer syscall.Close(ep)
	byFD := map[int32]*rawConn{}
	for i, c := range cs {
		r, err := takeOver(c, size)
		if err != nil {
			return err
		}
		cs[i] = nil
		raws = append(raws, r)
		byFD[int32(r.fd)] = r
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, r.fd,
			&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(r.fd)}); err != nil {
			return err
		}
	}
	cs = nil
	fmt.Printf("open %d\n", conns)

	pub := raws[0]
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = fill
	}
	frame := wsraw.AppendFrame(nil, wsraw.Fin|wsraw.OpBinary, payload, pub.mask)
	off := len(frame) - size
	var (
		seq    uint64
		got    int
		lastAt time.Time
		evs    = make([]syscall.EpollEvent, 512)
		lat    []time.Duration
		t0     time.Time
		cpu0   float64
	)
	handle := func(r *rawConn, p []byte) error {
		if len(p) != size {
			return fmt.Errorf("a message of %d bytes, sent %d", len(p), size)
		}
		if s := binary.LittleEndian.Uint64(p); s != seq || s != r.last+1 {
			return fmt.Errorf("message %d arrived while %d was broadcast (the connection's last was %d)", s, seq, r.last)
		}
		for _, b := range p[8:] {
			if b != fill {
				return errors.New("a message's bytes differ from what was sent")
			}
		}
		r.last = seq
		if got++; got == conns {
			lastAt = time.Now()
		}
		return nil
	}
	for i := 1; i <= warmup+pubs; i++ {
		if i == warmup+1 {
			t0, cpu0 = time.Now(), wsraw.CPUSeconds()
			fmt.Println("start")
		}
		seq, got = uint64(i), 0
		var sb [8]byte
		binary.LittleEndian.PutUint64(sb[:], seq)
		for j, b := range sb {
			frame[off+j] = b ^ pub.mask[j&3]
		}
		sent := time.Now()
		if err := pub.write(frame); err != nil {
			return fmt.Errorf("broadcast %d: %w", seq, err)
		}
		deadline := sent.Add(timeout)
		for got < conns {
			wait := time.Until(deadline)
			if wait <= 0 {
				return fmt.Errorf("broadcast %d: %d of %d connections had it after %v", seq, got, conns, timeout)
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
				if err := r.readAll(func(p []byte) error { return handle(r, p) }); err != nil {
					return err
				}
			}
		}
		if i > warmup {
			lat = append(lat, lastAt.Sub(sent))
		}
	}
	t1, cpu1 := time.Now(), wsraw.CPUSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	var sb strings.Builder
	sb.WriteString("lat")
	for _, d := range lat {
		fmt.Fprintf(&sb, " %d", d.Microseconds())
	}
	fmt.Println(sb.String())
	return nil
}

// rawConn is a connection taken over from the net package: a non-blocking descriptor read
// by the epoll loop, and the bytes of a frame not yet complete.
type rawConn struct {
	fd      int
	mask    [4]byte
	last    uint64 // the last sequence number read
	pending []byte
	out     []byte
	buf     []byte
	max     int
}

// takeOver hands c's socket over to a rawConn: it duplicates the descriptor and closes c,
// which takes the socket out of the Go runtime's poller. The server sends nothing unasked
// before the first broadcast, so nothing may be buffered in c.
func takeOver(c *wsraw.Conn, size int) (*rawConn, error) {
	if n := c.Buffered(); n > 0 {
		return nil, fmt.Errorf("%d unread bytes before the first broadcast", n)
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
	c.Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return &rawConn{fd: fd, mask: c.Mask, buf: make([]byte, 4096), max: size + 14}, nil
}

// close drops the connection at once (SO_LINGER 0: an RST, no TIME_WAIT).
func (r *rawConn) close() {
	_ = syscall.SetsockoptLinger(r.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	_ = syscall.Close(r.fd)
}

// readAll reads what the socket has and calls handle with each whole binary message.
func (r *rawConn) readAll(handle func([]byte) error) error {
	for {
		n, err := syscall.Read(r.fd, r.buf)
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
		if len(b) > r.max+4096 {
			return fmt.Errorf("a frame over %d bytes", r.max)
		}
		r.pending = append(r.pending[:0], b...)
		if n < len(r.buf) {
			return nil
		}
	}
}

// frame parses one frame at the start of b and returns how many bytes it took, or 0 if b
// does not hold a whole frame yet.
func (r *rawConn) frame(b []byte, handle func([]byte) error) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
		return 0, errors.New("a server frame with RSV bits or a mask")
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
		if v > uint64(r.max) {
			return 0, fmt.Errorf("a frame of %d bytes", v)
		}
		h, n = 10, int(v)
	}
	if n > r.max {
		return 0, fmt.Errorf("a frame of %d bytes", n)
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
		return 0, fmt.Errorf("the server closed a connection: %q", p)
	case op == wsraw.OpBinary && fin:
		return h + n, handle(p)
	}
	return 0, fmt.Errorf("unexpected frame: opcode %#x, fin %v", op, fin)
}

// write writes b whole; the socket is non-blocking, so it waits for room (briefly: the
// messages are small and the socket buffers big).
func (r *rawConn) write(b []byte) error {
	for deadline := time.Now().Add(10 * time.Second); len(b) > 0; {
		n, err := syscall.Write(r.fd, b)
		if errors.Is(err, syscall.EAGAIN) {
			if time.Now().After(deadline) {
				return errors.New("a write blocked for 10s")
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
