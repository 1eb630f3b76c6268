//go:build unix

package eventsource

import (
	"net"
	"os"
	"syscall"
)

// rawConn returns the socket of conn for writes that never wait, or nil when conn is not a
// plain socket (TLS, a wrapper).
func rawConn(conn net.Conn) syscall.RawConn {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeFD writes w.p to the socket once. It always reports done, so that RawConn.Write never
// waits: a socket that takes nothing (EAGAIN) leaves w.n at 0.
func (w *rawWriter) writeFD(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.p)
		switch err {
		case syscall.EINTR:
			continue
		case nil:
			w.n = n
		case syscall.EAGAIN:
		default:
			w.err = os.NewSyscallError("write", err)
		}
		return true
	}
}
