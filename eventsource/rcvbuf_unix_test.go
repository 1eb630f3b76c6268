//go:build unix

package eventsource_test

import "syscall"

// setSmallReceiveBuffer gives the socket fd a 4 KiB receive buffer.
func setSmallReceiveBuffer(fd uintptr) {
	_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
}
