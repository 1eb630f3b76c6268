//go:build !linux

package poller

import (
	"net"
	"syscall"
	"time"
)

// Conn is a connection watched by the poller. On this platform there is none: NewConn always
// returns ErrUnsupported.
type Conn struct{ net.Conn }

// Runner is what owns a served Conn (see the Linux documentation).
type Runner interface {
	Run()
	Timer()
}

// NewConn returns ErrUnsupported: only Linux has a poller.
func NewConn(nc net.Conn) (*Conn, error) { return nil, ErrUnsupported }

// Raw is never called on this platform.
func (c *Conn) Raw() syscall.RawConn { return nil }

// Serve is never called on this platform.
func (c *Conn) Serve(r Runner) {}

// Owner is never called on this platform.
func (c *Conn) Owner() Runner { return nil }

// Park is never called on this platform.
func (c *Conn) Park() bool { return true }

// Finish is never called on this platform.
func (c *Conn) Finish() {}

// SetNoWait is never called on this platform.
func (c *Conn) SetNoWait(on bool) {}

// SetTimer is never called on this platform.
func (c *Conn) SetTimer(d time.Duration) {}

// CloseWrite is never called on this platform.
func (c *Conn) CloseWrite() error { return nil }
