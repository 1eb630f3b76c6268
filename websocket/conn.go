package websocket

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-go/herald/extensions"
	"github.com/herald-go/herald/metrics"
)

// MessageType is the type of a data message: text (UTF-8) or binary.
type MessageType int

// The two kinds of data message (RFC 6455 §5.6); their values are the frames' opcodes.
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

// The frame library's opcodes are the values above: each index is 0 only when they agree, and
// any other constant index fails to compile.
var (
	_ = [1]struct{}{}[MessageText-MessageType(ws.OpText)]
	_ = [1]struct{}{}[MessageBinary-MessageType(ws.OpBinary)]
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Conn is one WebSocket connection, server or client side.
//
// One goroutine at a time may read (Read, Reader); Write, Writer, Ping, Close and the accessors
// are safe for concurrent use from any number of goroutines, and every frame, including the
// pongs and close replies that reading sends, is written whole before the next. Control frames
// (ping, pong, close) are handled by whoever reads: a connection that nobody reads never sees
// pongs or the peer's close frame, so keep a goroutine in Read (or use NetConn).
//
// Cancelling the context given to a call ends that call, never the connection, with one
// exception: when a write is cut off after part of its frame went out, the stream can no longer
// be framed and the connection is closed.
type Conn struct {
	conn   net.Conn
	client bool
	extRSV byte // reserved bits the negotiated extensions may set
	// closeWritten is set, under frameMu, once a close frame went out; nothing follows it.
	closeWritten bool
	// fragmenting is set, under frameMu, while a Writer's message has frames still to come:
	// a whole message must then wait for the turn of whole messages (msgMu).
	fragmenting bool
	closeSent   atomic.Bool // a close frame is sent or on its way
	// (The flags sit together here, where they fill one word: the Conn is then 512 bytes,
	// the largest size class whose objects need no malloc header. Check the size when adding
	// fields: an idle connection is mostly this struct; see idle_internal_test.go.)
	opts     *connOptions // shared by the connections made with the same options (internOptions)
	req      handshakeRequest
	protocol string
	ext      *extensions.Negotiated // nil when no extension was negotiated; its Header is Extensions()

	// reading: owned by the goroutine holding readMu
	readMu     turnLock
	rb         *readBuf
	rd         readState
	rdeadline  deadline
	firstFrame time.Time      // deadline for the peer's first frame; zero once it arrived whole
	late       *[]lateMessage // messages Close read while the application was not reading; nil when none

	// writing
	msgMu     turnLock // held for a whole data message (several frames for Writer)
	frameMu   turnLock // held for each frame (control frames can give up waiting)
	wdeadline deadline
	queued    atomic.Int64

	// pings
	pingMu    sync.Mutex
	pingTimer *time.Timer
	pinging   *pinging // made for the first ping

	// closing
	closing  closeSignal
	err      error // why the connection closed; set before closed is closed
	registry *Registry
	metrics  metrics.Recorder // Options.Metrics, server side
}

// connOptions are the options a connection keeps, with defaults applied: a few words, shared
// by the connections made with equal options rather than a copy of Options per connection.
type connOptions struct {
	MaxLength         int64
	WriteQueueLimit   int64
	PingInterval      time.Duration
	PongTimeout       time.Duration
	CloseTimeout      time.Duration
	FirstFrameTimeout time.Duration
}

// maxHeaderSize is the longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const maxHeaderSize = 14

// maxInterned bounds how many distinct connOptions internOptions keeps: an application that
// makes options of ever new values gets a copy per connection past it, as it would without
// the sharing.
const maxInterned = 64

// interned holds the shared connOptions (a connOptions is never changed once made).
var (
	internMu sync.Mutex
	interned []*connOptions // at most maxInterned
)

// internOptions returns a connOptions equal to o, shared with the other connections made
// with equal options while fewer than maxInterned distinct ones were seen.
func internOptions(o connOptions) *connOptions {
	internMu.Lock()
	defer internMu.Unlock()
	for _, p := range interned {
		if *p == o {
			return p
		}
	}
	p := &o
	if len(interned) < maxInterned {
		interned = append(interned, p)
	}
	return p
}

func newConn(nc net.Conn, pending []byte, client bool, opts *Options) *Conn {
	c := &Conn{
		conn:   nc,
		client: client,
		opts: internOptions(connOptions{
			MaxLength: opts.MaxLength, WriteQueueLimit: opts.WriteQueueLimit, PingInterval: opts.PingInterval,
			PongTimeout: opts.PongTimeout, CloseTimeout: opts.CloseTimeout, FirstFrameTimeout: opts.FirstFrameTimeout,
		}),
	}
	c.rb = newReadBuf(c, pending)
	c.rdeadline.c, c.wdeadline.c = c, c
	c.metrics = serverMetrics(client, opts)
	if opts.FirstFrameTimeout > 0 {
		// Set here, on the goroutine that upgrades: the reading goroutine then finds it set
		// and goes to sleep on a stack that never had to grow for timer work.
		c.firstFrame = time.Now().Add(opts.FirstFrameTimeout)
		c.rdeadline.apply(c.firstFrame)
	}
	if opts.PingInterval > 0 {
		c.pingTimer = time.AfterFunc(opts.PingInterval, c.autoPing)
	}
	return c
}

// setExtensions installs the negotiated extensions, if any.
func (c *Conn) setExtensions(n *extensions.Negotiated) {
	if n == nil || len(n.Sessions) == 0 {
		return
	}
	c.ext = n
	c.extRSV = byte(n.RSV)
}

// Protocol returns the negotiated subprotocol, or "" when none was.
func (c *Conn) Protocol() string { return c.protocol }

// Version returns the protocol version, "hybi-13" (RFC 6455), as faye-websocket names it.
func (c *Conn) Version() string { return "hybi-13" }

// Extensions returns the negotiated extensions as they appeared in the handshake's
// Sec-WebSocket-Extensions header, or "" when none were.
func (c *Conn) Extensions() string {
	if c.ext == nil {
		return ""
	}
	return c.ext.Header
}

// Request returns the HTTP request of the handshake: on the server, a copy of the request
// given to Upgrade with its method, URL, headers, host, remote address and TLS state, but no
// body and a background context; on the client, a copy of the request Dial sent. Each call
// returns a new copy, which the caller may change.
func (c *Conn) Request() *http.Request { return c.req.request() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// BufferedAmount returns how many bytes of data messages are waiting to be written or being
// written, like the browser's WebSocket.bufferedAmount. It is bounded by
// Options.WriteQueueLimit.
func (c *Conn) BufferedAmount() int64 { return c.queued.Load() }

// Done returns a channel that is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.closing.done() }

// Err returns why the connection closed, or nil while it is open.
func (c *Conn) Err() error {
	if c.closing.isSet() {
		return c.err
	}
	return nil
}

// lock takes l, giving up when ctx ends or the connection closes.
func (c *Conn) lock(ctx context.Context, l *turnLock) error {
	err := l.lock(ctx, c.closing.done)
	if err == errLockClosed {
		return c.closedErr()
	}
	return err
}

// closedErr is what calls on a closed connection return.
func (c *Conn) closedErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

func (c *Conn) isClosed() bool { return c.closing.isSet() }

// deadline applies a context's deadline and cancellation to one direction of the network
// connection, for one operation at a time. Between operations the connection keeps a base
// deadline (for reading, the peer's first frame; otherwise none). The deadline is changed on
// the connection only when it differs from what is set, so that the common operation, on a
// background context, costs no timer work at all.
type deadline struct {
	c    *Conn // whose connection (c.conn) it applies to; its wdeadline or its rdeadline
	mu   sync.Mutex
	gen  uint64 // which operation a late cancellation belongs to
	cur  int64  // the deadline set on the connection, as unixNano gives it
	stop func() bool
}

// apply sets t as the connection's deadline for d's direction. The caller owns d, and no
// cancellation of its operation can run, or d.mu is held.
func (d *deadline) apply(t time.Time) {
	if d == &d.c.wdeadline {
		_ = d.c.conn.SetWriteDeadline(t)
	} else {
		_ = d.c.conn.SetReadDeadline(t)
	}
	d.cur = unixNano(t)
}

// unixNano is t in nanoseconds since 1970, or 0 for the zero time (no deadline).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// begin sets the earlier of ctx's deadline and base (zero: none) and arranges for ctx's
// cancellation to interrupt the operation.
func (d *deadline) begin(ctx context.Context, base time.Time) {
	dl := base
	if t, ok := ctx.Deadline(); ok && (dl.IsZero() || t.Before(dl)) {
		dl = t
	}
	// No cancellation can run here: the previous operation's end stopped its own.
	if unixNano(dl) != d.cur {
		d.apply(dl)
	}
	if ctx.Done() != nil {
		gen := d.gen
		d.stop = context.AfterFunc(ctx, func() {
			d.mu.Lock()
			if d.gen == gen {
				d.apply(aLongTimeAgo)
			}
			d.mu.Unlock()
		})
	}
}

// rebase replaces the base deadline given to begin by ctx's own (or none), unless ctx has
// already interrupted the operation.
func (d *deadline) rebase(ctx context.Context) {
	dl, _ := ctx.Deadline()
	d.mu.Lock()
	if ctx.Err() == nil && unixNano(dl) != d.cur {
		d.apply(dl)
	}
	d.mu.Unlock()
}

// end finishes the operation begin started, leaving base set on the connection.
func (d *deadline) end(base time.Time) {
	if d.stop != nil {
		d.stop()
		d.stop = nil
		d.mu.Lock()
		d.gen++ // a cancellation running late now changes nothing
		d.mu.Unlock()
	}
	if unixNano(base) != d.cur {
		d.apply(base)
	}
}
