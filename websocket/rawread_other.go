//go:build !unix

package websocket

import (
	"errors"
	"net"
	"syscall"
)

// rawConn returns nil: outside Unix, reads go through a buffer of the connection's own.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (b *readBuf) rawRead(uintptr) bool { return true }

// rawErr is never called: rawRead keeps no error outside Unix.
func rawErr(uintptr) error { return errors.New("websocket: read failed") }
