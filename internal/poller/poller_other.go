//go:build !linux

package poller

import (
	"net"
	"syscall"
)

// Conn is a connection watched by the poller. On this platform there is none: NewConn always
// returns ErrUnsupported.
type Conn struct{ net.Conn }

// NewConn returns ErrUnsupported: only Linux has a poller.
func NewConn(nc net.Conn) (*Conn, error) { return nil, ErrUnsupported }

// Raw is never called on this platform.
func (c *Conn) Raw() syscall.RawConn { return nil }

// Serve is never called on this platform.
func (c *Conn) Serve(run func()) {}

// Park is never called on this platform.
func (c *Conn) Park() bool { return true }

// SetNoWait is never called on this platform.
func (c *Conn) SetNoWait(on bool) {}

// CloseWrite is never called on this platform.
func (c *Conn) CloseWrite() error { return nil }
