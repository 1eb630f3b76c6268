package eventsource

import (
	"net/http"
	"time"

	"github.com/herald-go/herald/metrics"
)

// Options configures an EventSource made by New. A nil *Options is valid and means all
// defaults. Options may be shared by many streams and must not be changed while in use.
type Options struct {
	// Retry is sent first as the "retry:" field: how long the client waits before it
	// reconnects after the stream ends or drops. Zero means no retry field (browsers then wait
	// about 3 seconds, Node's eventsource 2 seconds).
	Retry time.Duration

	// PingInterval is how often a keep-alive comment is sent when nothing else was written in
	// that time: it keeps proxies from closing an idle response and finds clients that are
	// gone. Zero means 15 seconds; a negative value turns pings off.
	PingInterval time.Duration

	// Header holds extra response headers (for example Access-Control-Allow-Origin), added to
	// those already set on the http.ResponseWriter's Header before New was called.
	// Content-Type, Cache-Control and X-Accel-Buffering are always set by New, and on a
	// connection it takes over, Connection: close and Date (unless set); Content-Length,
	// Transfer-Encoding, Trailer, Keep-Alive and Upgrade are dropped.
	Header http.Header

	// WriteTimeout bounds each write to the client (one batch of events and its flush) that
	// has to wait for it. A client that reads nothing for that long (through an HTTP/1
	// ResponseWriter, for at least half of it: the deadline is moved only when less than half
	// is left) is disconnected: Done is closed and Err reports the timeout. Zero means 10
	// seconds.
	WriteTimeout time.Duration

	// QueueLimit bounds the bytes that Send and Ping may queue while earlier events are still
	// being written. A Send that would go past it ends the stream with ErrSlowClient: the
	// client reconnects and, with a Stream, resumes from its Last-Event-ID without a gap.
	// Events from a Stream are not counted here; they wait in the Stream's history, which
	// bounds them. Zero means 1 MiB.
	QueueLimit int

	// Registry, when set, tracks the streams New starts, so that Registry.Shutdown can end
	// them all when the server stops; after Shutdown, New refuses new streams with 503.
	Registry *Registry

	// Metrics receives the streams' figures: opened and closed (slow_consumer for a client
	// that fell behind), the events sent with Send and their bytes (a Stream's events, which
	// do not go through Send, are not counted per stream), and, for a Stream's subscribers,
	// resume hits and resets (see package metrics). Nil means none, at no cost.
	Metrics metrics.Recorder

	// IdleMode watches a stream New took over (HTTP/1.x on a plain TCP or Unix connection, on
	// Linux) with herald's epoll loop instead of a goroutine per stream: the goroutine that
	// notices the client leaving exists only while the client sends something (it never does,
	// but for closing). It saves that goroutine and its stack: an idle stream costs about
	// 3.3 KiB instead of 6.8 (bench/idle, 10,000 streams). Over TLS, HTTP/2 and on other
	// platforms it changes nothing. See package websocket's "Idle mode" for the trade-off.
	IdleMode bool
}

const (
	defaultPingInterval = 15 * time.Second
	defaultWriteTimeout = 10 * time.Second
	defaultQueueLimit   = 1 << 20
)

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.PingInterval == 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = defaultQueueLimit
	}
	return c
}
