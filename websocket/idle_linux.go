package websocket

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/herald-go/herald/internal/poller"
)

// serveIdle moves the connection onto the poller and starts serving it there, or reports false
// when it cannot (TLS, a client connection's proxy tunnel, a closed connection): the caller
// then serves it with a goroutine.
func (c *Conn) serveIdle(s *served) bool {
	if c.rb.raw == nil {
		return false // not a socket Go's runtime polls: TLS or a wrapped connection
	}
	ctx := context.Background()
	// Nobody may read, write or close the socket while it changes hands: the reading turn,
	// then the frame turn (the order the reader takes them in), then the close signal's lock.
	if c.lock(ctx, &c.readMu) != nil {
		return false
	}
	defer c.readMu.unlock()
	if c.lock(ctx, &c.frameMu) != nil {
		return false
	}
	defer c.frameMu.unlock()
	c.closing.mu.Lock()
	defer c.closing.mu.Unlock()
	if c.closing.isSet() {
		return false
	}
	pc, err := poller.NewConn(c.conn)
	if err != nil {
		return false
	}
	var nc net.Conn = pc
	c.conn = nc // and so c.rb's
	c.rb.raw = pc.Raw()
	// The read deadline set on the old socket (the peer's first frame), on the new one;
	// there is no write deadline between writes.
	c.rdeadline.apply(c.firstFrame)
	// The automatic pings move to the poller's timers: a runtime timer per connection is
	// most of a hundred and fifty bytes.
	pc.Serve(s)
	c.pingMu.Lock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
		c.pingTimer = nil
		pc.SetTimer(c.opts.PingInterval)
	}
	c.pingMu.Unlock()
	return true
}

// idleServed returns how the connection is served in idle mode, or nil when it is not.
func (c *Conn) idleServed() *served {
	if pc, ok := c.conn.(*poller.Conn); ok {
		s, _ := pc.Owner().(*served) // nil while serveIdle is still handing it over
		return s
	}
	return nil
}

// idleSetTimer schedules the next automatic ping on the poller's timers.
func (c *Conn) idleSetTimer(d time.Duration) {
	if pc, ok := c.conn.(*poller.Conn); ok {
		pc.SetTimer(d)
	}
}

// Timer sends the automatic ping, when the poller's timer for it fires (see serveIdle).
func (s *served) Timer() { s.c.autoPing() }

// Run is the idle-mode reading goroutine (see idleRun).
func (s *served) Run() { s.idleRun() }

// poller returns the connection's socket as the poller holds it.
func (s *served) poller() *poller.Conn { return s.c.conn.(*poller.Conn) }

// idleRun is the idle-mode reading goroutine: started by the poller when the parked connection
// has bytes to read (or closes, or its read deadline passes), it reads and delivers messages
// until the socket has nothing more, then parks the connection and returns.
func (s *served) idleRun() {
	c := s.c
	ctx := context.Background()
	if err := c.lock(ctx, &c.readMu); err != nil {
		s.idleFinish(err)
		return
	}
	s.working = true
	var buf *[]byte
	for {
		if c.late == nil && !c.rd.inMsg && c.rb.r == c.rb.w {
			if c.isClosed() {
				s.idleUnlock(buf)
				s.idleFinish(c.closedErr())
				return
			}
			// Between messages with nothing buffered: read what the socket holds, without
			// waiting.
			s.poller().SetNoWait(true)
			err := c.rb.fill()
			s.poller().SetNoWait(false)
			if err != nil {
				if errors.Is(err, poller.ErrWouldBlock) {
					s.idleUnlock(buf)
					buf = nil
					if s.poller().Park() {
						return
					}
					if err := c.lock(ctx, &c.readMu); err != nil {
						s.idleFinish(err)
						return
					}
					s.working = true
					continue
				}
				err = c.readFailed(ctx, err) // closes the connection, unless it is a timeout
				s.idleUnlock(buf)
				s.idleFinish(err)
				return
			}
		}
		if buf == nil {
			buf = messageBufPool.Get().(*[]byte)
		}
		c.rdeadline.begin(ctx, c.firstFrame)
		typ, msg, err := c.readLocked(ctx, (*buf)[:0])
		c.rdeadline.end(c.firstFrame)
		if err != nil {
			if !c.rd.inMsg {
				c.rd.msg, c.rd.msgStart = nil, 0 // never keep a pooled buffer in the read state
			}
			if err == errYield {
				continue
			}
			s.idleUnlock(buf)
			s.idleFinish(err)
			return
		}
		if cap(msg) <= maxKeptMessageBuf && cap(msg) >= cap(*buf) {
			*buf = msg[:0]
		}
		// OnMessage runs without the reading turn, so that it may Close (which reads the
		// peer's close frame itself).
		s.working = false
		c.readMu.unlock()
		err = s.deliver(typ, msg)
		if err == nil {
			err = c.lock(ctx, &c.readMu)
			if err != nil {
				s.idleFinish(err)
				messageBufPool.Put(buf)
				return
			}
			s.working = true
		}
		if err != nil {
			messageBufPool.Put(buf)
			s.idleFinish(err)
			return
		}
	}
}

// idleUnlock ends the reading goroutine's turn, giving its message buffer back.
func (s *served) idleUnlock(buf *[]byte) {
	s.working = false
	if buf != nil {
		messageBufPool.Put(buf)
	}
	s.c.readMu.unlock()
}

// idleFinish reports the connection's end, once: the poller starts no goroutine after it.
func (s *served) idleFinish(err error) {
	s.poller().Finish()
	s.finish(err)
}
