package websocket

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Events receives a served connection's messages and its end; see Conn.Serve.
type Events struct {
	// OnMessage is called with each data message, one at a time, in order, on a goroutine of
	// the connection's (never two at once for one connection). data is valid only until
	// OnMessage returns: copy what you keep. Control frames never reach it (pings are answered,
	// pongs settle Ping and the automatic pings, a close frame ends the connection). OnMessage
	// may call any method of the connection, Write and Close included; while it runs, the
	// connection reads nothing more. Nil discards messages.
	OnMessage func(c *Conn, typ MessageType, data []byte)

	// OnClose is called once, after the last OnMessage, with why the connection ended: what
	// Read would have returned (a *CloseError for the peer's close frame or a lost connection,
	// a *ProtocolError for a peer that broke the protocol or a limit, ErrClosed after Close or
	// CloseNow, ErrPongTimeout ...). Nil means nothing is called.
	OnClose func(c *Conn, err error)

	// IdleMode serves the connection without a goroutine while it has nothing to read: the
	// connection's socket is handed to herald's own epoll loop, and a goroutine and a read
	// buffer are taken only when bytes arrive (or a deadline passes, or the connection closes),
	// for as long as there is something to read. An idle connection then costs about 2.3 KiB
	// instead of about 7 (bench/idle). It needs Linux and a plain TCP or Unix connection: on
	// other platforms and over TLS, Serve keeps a goroutine per connection, as without IdleMode (IdleMode on the
	// Conn says which). See "Idle mode" in the package documentation for the trade-off.
	IdleMode bool
}

// Serve reads the connection's messages and hands each to ev.OnMessage, then reports the
// connection's end to ev.OnClose, and returns at once: the reading goes on without the caller.
// It is the callback form of Read, for servers that hold many connections; with ev.IdleMode it
// keeps no goroutine for a connection that has nothing to read.
//
// Call Serve once, right after Upgrade (or Dial), before any other call on the connection, and
// never call Read, ReadAppend or Reader on a served connection: Serve owns reading. Everything
// else keeps working as on a connection read by Read: Write, Ping, Close and the accessors
// from any goroutine, automatic pings, FirstFrameTimeout, MaxLength and the other limits, and
// the closing handshake, whichever side starts it. A panic in OnMessage closes the connection
// with 1011 (internal error) and is reported to OnClose.
//
//	c, err := websocket.Upgrade(w, r, opts)
//	if err != nil {
//		return
//	}
//	c.Serve(&websocket.Events{
//		IdleMode:  true,
//		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
//			_ = c.Write(context.Background(), typ, data) // echo
//		},
//	})
//	// return: net/http lets go of the request
func (c *Conn) Serve(ev *Events) {
	if ev == nil {
		ev = &Events{}
	}
	s := &served{c: c, ev: ev}
	if ev.IdleMode && c.serveIdle(s) {
		return
	}
	go s.goroutineMode()
}

// IdleMode reports whether the connection is served in idle mode (Serve with Events.IdleMode,
// on a platform and connection that allow it). Call it after Serve.
func (c *Conn) IdleMode() bool { return c.idleServed() != nil }

// served is a connection being served: its callbacks, and in idle mode the state its reading
// goroutine keeps between two wake-ups.
type served struct {
	c       *Conn
	ev      *Events
	working bool // the idle-mode reader holds readMu and may yield (see yieldIdle)
}

// goroutineMode is Serve without idle mode: a goroutine in ReadAppend for the connection's
// life, with one buffer reused from message to message.
func (s *served) goroutineMode() {
	c := s.c
	ctx := context.Background()
	var buf []byte
	for {
		typ, msg, err := c.ReadAppend(ctx, buf[:0])
		if err != nil {
			s.finish(err)
			return
		}
		if err := s.deliver(typ, msg); err != nil {
			s.finish(err)
			return
		}
		if cap(msg) <= maxKeptMessageBuf {
			buf = msg
		} else {
			buf = nil
		}
	}
}

// maxKeptMessageBuf bounds the message buffers kept for the next message, in a pool (idle
// mode) or by the reading goroutine: a rare large message does not pin its buffer.
const maxKeptMessageBuf = 64 << 10

// messageBufPool holds the buffers idle-mode connections read messages into, so that a
// connection holds one only while it reads.
var messageBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// deliver hands one message to OnMessage, turning a panic into an error that closes the
// connection with 1011.
func (s *served) deliver(typ MessageType, data []byte) (err error) {
	if s.ev.OnMessage == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("websocket: Events.OnMessage panicked: %v", r)
			_ = s.c.Close(StatusInternalError, "")
		}
	}()
	s.ev.OnMessage(s.c, typ, data)
	return nil
}

// finish reports the end of the connection to OnClose, closing it first if it is still open
// (a reading error that did not close it, which only a context can cause).
func (s *served) finish(err error) {
	if !s.c.isClosed() {
		_ = s.c.CloseNow()
	}
	if s.ev.OnClose != nil {
		s.ev.OnClose(s.c, err)
	}
}

// errYield is what the reader returns, in idle mode, when it has read control frames and
// nothing more is buffered: the serving goroutine then parks the connection rather than wait.
var errYield = errors.New("websocket: idle: nothing more to read")

// yieldIdle reports whether an idle-mode reader should stop after a control frame: it is the
// serving goroutine, between data messages, with nothing buffered. Called by nextDataFrame.
func (c *Conn) yieldIdle() bool {
	if c.rd.inMsg || c.rb.r != c.rb.w {
		return false
	}
	s := c.idleServed()
	return s != nil && s.working
}

// resetPingTimer starts the wait for the next automatic ping, after a pong: on the
// connection's own timer, or in idle mode on the poller's (which costs an idle connection no
// timer of its own). Called by settlePong, with c.pingMu held.
func (c *Conn) resetPingTimer() {
	if c.pingTimer != nil {
		c.pingTimer.Reset(c.opts.PingInterval)
		return
	}
	c.idleSetTimer(c.opts.PingInterval)
}
