package websocket

import (
	"errors"

	"github.com/herald-go/herald/metrics"
)

// serverMetrics is the Recorder of a connection: Options.Metrics on the server side, none on
// the client's. opts is not nil (newConn reads it first).
func serverMetrics(client bool, opts *Options) metrics.Recorder {
	if client {
		return nil
	}
	return opts.Metrics
}

// meterOpen counts an upgraded connection.
func (c *Conn) meterOpen() {
	if c.metrics != nil {
		c.metrics.ConnOpened(metrics.WebSocket)
	}
}

// meterClose counts a connection that closed for err (shut runs it once).
func (c *Conn) meterClose(err error) {
	if c.metrics == nil {
		return
	}
	var pe *ProtocolError
	reason := metrics.Normal
	switch {
	case errors.As(err, &pe):
		reason = metrics.ProtocolError
	case errors.Is(err, ErrPongTimeout):
		reason = metrics.HeartbeatTimeout
	case errors.Is(err, ErrWriteQueueFull):
		reason = metrics.SlowConsumer
	}
	c.metrics.ConnClosed(metrics.WebSocket, reason)
}

// meterIn counts a message of n bytes read, unless err.
func (c *Conn) meterIn(n int, err error) {
	if c.metrics != nil && err == nil {
		c.metrics.MessageIn(metrics.WebSocket, n)
	}
}

// meterOut counts a message of n bytes written, unless *err. Unlike the other meters it does
// not check c.metrics: its caller does, so that a connection without metrics defers nothing.
func (c *Conn) meterOut(n int, err *error) {
	if *err == nil {
		c.metrics.MessageOut(metrics.WebSocket, n)
	}
}

// meterDeflate observes a message of in bytes that the extensions made out bytes, when
// compressed.
func (c *Conn) meterDeflate(in, out int, compressed bool) {
	if c.metrics != nil && compressed {
		c.metrics.Compressed(in, out)
	}
}

// meterQueue observes q bytes in the write queue with a message of n just added, when the
// message waits behind others.
func (c *Conn) meterQueue(q int64, n int) {
	if c.metrics != nil && q > int64(n) {
		c.metrics.QueueDepth(metrics.WebSocket, int(q))
	}
}
