//go:build unix

package websocket

import (
	"net"
	"syscall"
)

func (b *readBuf) rawRead(fd uintptr) bool {
	dst := b.target
	if dst == nil {
		if b.buf == nil {
			b.borrow()
		}
		dst = b.buf[b.w:]
	}
	for {
		n, err := syscall.Read(int(fd), dst)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			if b.target == nil && b.w == 0 && b.pool != nil {
				readBufPool.Put(b.pool)
				b.pool, b.buf = nil, nil
			}
			return false
		}
		if n < 0 {
			n = 0
		}
		b.n, b.errno = n, 0
		if err != nil {
			b.errno = uintptr(err.(syscall.Errno)) // what syscall.Read returns
		}
		return true
	}
}

// rawConn returns the socket's raw access when reads can be polled without a buffer.
func rawConn(conn net.Conn) syscall.RawConn {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// rawErr is the error rawRead kept as a number.
func rawErr(errno uintptr) error { return syscall.Errno(errno) }
