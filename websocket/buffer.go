package websocket

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// readBufSize is the size of the buffers frames are read through.
const readBufSize = 8 << 10

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// readBuf buffers what is read from the network. On sockets the runtime can poll (plain TCP
// and Unix connections), the buffer is borrowed from a pool only while bytes are waiting in it
// and returned as soon as it is empty: an idle connection holds no read buffer at all, which is
// most of what a connection costs. On other connections (TLS) it keeps one buffer.
//
// A readBuf is used by one goroutine at a time (the one holding Conn.readMu).
type readBuf struct {
	c    *Conn           // whose connection (c.conn) it reads
	raw  syscall.RawConn // nil: read through c.conn with a buffer of our own
	buf  []byte
	pool *[]byte // the pooled slice buf came from, nil when buf is our own or absent
	r, w int32   // within buf, which is at most readBufSize or the handshake's leftover bytes

	// state of the raw read in progress, kept here so rawFn allocates nothing per call
	rawFn  func(fd uintptr) bool
	target []byte // read into target; nil: read into buf, borrowing it when absent
	n      int
	errno  uintptr // the read's error, a syscall.Errno (see rawErr); 0: none
}

func newReadBuf(c *Conn, pending []byte) *readBuf {
	b := &readBuf{c: c, raw: rawConn(c.conn)}
	if b.raw != nil {
		b.rawFn = b.rawRead
	}
	if len(pending) > 0 {
		b.borrow()
		if len(pending) > len(b.buf) {
			if b.pool != nil {
				readBufPool.Put(b.pool)
			}
			b.buf = make([]byte, len(pending))
			b.pool = nil
		}
		b.w = int32(copy(b.buf, pending))
	}
	return b
}

func (b *readBuf) borrow() {
	if b.raw == nil {
		b.buf = make([]byte, readBufSize)
		return
	}
	b.pool = readBufPool.Get().(*[]byte)
	b.buf = *b.pool
}

// release gives an empty pooled buffer back.
func (b *readBuf) release() {
	if b.pool == nil || b.r != b.w {
		return
	}
	readBufPool.Put(b.pool)
	b.pool, b.buf = nil, nil
	b.r, b.w = 0, 0
}

// fill reads at least one more byte into the buffer.
func (b *readBuf) fill() error {
	switch {
	case b.buf == nil:
		if b.raw == nil {
			b.borrow()
		}
	case b.r == b.w:
		b.r, b.w = 0, 0
	case int(b.w) == len(b.buf):
		b.w = int32(copy(b.buf, b.buf[b.r:b.w]))
		b.r = 0
	}
	if b.raw == nil {
		n, err := b.c.conn.Read(b.buf[b.w:])
		b.w += int32(n)
		if n > 0 {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	b.target = nil
	n, err := b.readRaw()
	b.w += int32(n)
	return err
}

// readRaw waits until the socket is readable and reads once, into b.target or (borrowing it
// only then) into b.buf.
func (b *readBuf) readRaw() (int, error) {
	b.n, b.errno = 0, 0
	if err := b.raw.Read(b.rawFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		nc := b.c.conn
		return 0, &net.OpError{Op: "read", Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: rawErr(b.errno)}
	}
	if b.n == 0 {
		return 0, io.EOF
	}
	return b.n, nil
}

// peek returns the next n buffered bytes (n <= readBufSize), reading as needed. The bytes stay
// valid until the next call on b.
func (b *readBuf) peek(n int) ([]byte, error) {
	for int(b.w-b.r) < n {
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
	return b.buf[b.r : int(b.r)+n], nil
}

func (b *readBuf) discard(n int) { b.r += int32(n) }

// readSome reads into p what is buffered or, when nothing is, what one network read brings:
// straight into p when p is large, through the buffer when it is small.
func (b *readBuf) readSome(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w && len(p) >= readBufSize/2 {
		if b.raw == nil {
			return b.c.conn.Read(p)
		}
		b.release()
		b.target = p
		n, err := b.readRaw()
		b.target = nil
		return n, err
	}
	if b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += int32(n)
	return n, nil
}

// read fills p entirely.
func (b *readBuf) read(p []byte) error {
	for len(p) > 0 {
		n, err := b.readSome(p)
		p = p[n:]
		if err != nil && len(p) > 0 {
			return err
		}
	}
	return nil
}
