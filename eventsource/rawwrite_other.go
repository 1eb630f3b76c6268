//go:build !unix

package eventsource

import (
	"net"
	"syscall"
)

// rawConn returns nil: outside Unix, every write goes through a writer goroutine.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (w *rawWriter) writeFD(uintptr) bool { return true }
