//go:build unix

package eventsource

import (
	"net"
	"os"
	"syscall"
)

// socketFD returns the descriptor of conn's socket, for writes that never wait, or -1 when
// conn is not a plain socket (TLS, a wrapper).
func socketFD(conn net.Conn) int {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return -1
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if raw.Control(func(s uintptr) { fd = int(s) }) != nil {
		return -1
	}
	return fd
}

// writeNow writes p to the non-blocking socket fd once and returns how much it took: 0 when
// it took nothing (EAGAIN).
func writeNow(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, p)
		switch err {
		case nil:
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		}
		return 0, os.NewSyscallError("write", err)
	}
}
