//go:build !linux

package websocket

import "time"

// serveIdle reports false: idle mode needs Linux's epoll, so Serve keeps a goroutine.
func (c *Conn) serveIdle(s *served) bool { return false }

// idleServed returns nil: no connection is served in idle mode on this platform.
func (c *Conn) idleServed() *served { return nil }

// idleSetTimer is never called on this platform (the connection keeps its own ping timer).
func (c *Conn) idleSetTimer(d time.Duration) {}
