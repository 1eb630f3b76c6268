//go:build !linux

package websocket

// idlePoller is the connection's socket as the poller holds it: nothing on this platform.
type idlePoller = struct{}

// serveIdle reports false: idle mode needs Linux's epoll, so Serve keeps a goroutine.
func (c *Conn) serveIdle(s *served) bool { return false }
