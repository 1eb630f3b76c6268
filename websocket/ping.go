package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/gobwas/ws"
)

// pendingPing is a ping waiting for its pong.
type pendingPing struct {
	payload []byte
	done    chan struct{} // closed when settled; nil for automatic pings
	auto    bool
}

// pinging is the state of a connection that has pinged: what a connection that never pings
// does not carry.
type pinging struct {
	pings     []*pendingPing // waiting for pongs, oldest first
	seq       uint64         // the last automatic ping's number
	pongTimer *time.Timer    // the automatic ping's pong deadline; made for the first
}

// pingState returns c's ping state, making it for the first ping. c.pingMu is held.
func (c *Conn) pingState() *pinging {
	if c.pinging == nil {
		c.pinging = new(pinging)
	}
	return c.pinging
}

// maxPendingPings bounds the pings waiting for pongs; past it the oldest are given up.
const maxPendingPings = 64

// Ping sends a ping with payload (at most 125 bytes) and returns when the matching pong has
// arrived. A peer may answer only the latest of several pings (RFC 6455 §5.5.3), so a pong
// settles the ping it matches and every ping sent before it. Pongs are read by Read: Ping needs
// another goroutine reading, or it waits until ctx ends.
func (c *Conn) Ping(ctx context.Context, payload []byte) error {
	if len(payload) > 125 {
		return errors.New("websocket: ping payload longer than 125 bytes")
	}
	p := &pendingPing{payload: bytes.Clone(payload), done: make(chan struct{})}
	c.addPing(p)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.CloseTimeout)
	}
	if err := c.writeControl(ws.OpPing, payload, deadline); err != nil {
		c.dropPing(p)
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		c.dropPing(p)
		return ctx.Err()
	case <-c.closing.done():
		return c.closedErr()
	}
}

func (c *Conn) addPing(p *pendingPing) {
	c.pingMu.Lock()
	ps := c.pingState()
	if len(ps.pings) == maxPendingPings {
		ps.pings = ps.pings[1:]
	}
	ps.pings = append(ps.pings, p)
	c.pingMu.Unlock()
}

func (c *Conn) dropPing(p *pendingPing) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	ps := c.pinging // made by addPing
	for i, q := range ps.pings {
		if q == p {
			ps.pings = append(ps.pings[:i], ps.pings[i+1:]...)
			return
		}
	}
}

// settlePong settles the latest ping whose payload the pong carries, and all before it.
// Unsolicited pongs are ignored.
func (c *Conn) settlePong(payload []byte) {
	c.pingMu.Lock()
	ps := c.pinging
	if ps == nil {
		c.pingMu.Unlock()
		return // no ping was ever sent: unsolicited
	}
	last := -1
	for i := len(ps.pings) - 1; i >= 0; i-- {
		if bytes.Equal(ps.pings[i].payload, payload) {
			last = i
			break
		}
	}
	if last < 0 {
		c.pingMu.Unlock()
		return
	}
	settled := ps.pings[:last+1]
	ps.pings = append([]*pendingPing(nil), ps.pings[last+1:]...)
	auto := false
	for _, p := range settled {
		if p.auto {
			auto = true
		} else {
			close(p.done)
		}
	}
	if auto {
		ps.pongTimer.Stop()
		c.resetPingTimer() // idle mode keeps it in the poller (idle.go)
	}
	c.pingMu.Unlock()
}

// autoPing sends the automatic ping and starts the pong deadline. It runs on its timer's
// goroutine.
func (c *Conn) autoPing() {
	if c.isClosed() {
		return
	}
	c.pingMu.Lock()
	ps := c.pingState()
	ps.seq++
	payload := binary.BigEndian.AppendUint64(nil, ps.seq)
	// The pong timer is made on the first ping: idle connections that are closed before
	// their first ping never pay for it.
	if ps.pongTimer == nil {
		ps.pongTimer = time.AfterFunc(c.opts.PongTimeout, c.pongTimedOut)
	} else {
		ps.pongTimer.Reset(c.opts.PongTimeout)
	}
	c.pingMu.Unlock()
	c.addPing(&pendingPing{payload: payload, auto: true})
	// A failed write closes the connection itself.
	_ = c.writeControl(ws.OpPing, payload, time.Now().Add(c.opts.PongTimeout))
}

// pongTimedOut closes a connection whose peer left an automatic ping unanswered.
func (c *Conn) pongTimedOut() {
	if c.isClosed() {
		return
	}
	if c.closeSent.CompareAndSwap(false, true) {
		var buf [125]byte
		_ = c.writeControl(ws.OpClose, closePayload(buf[:], StatusGoingAway, "pong timeout"), time.Now().Add(failWriteTimeout))
	}
	c.shut(ErrPongTimeout)
}

// stopPings stops the automatic ping timers.
func (c *Conn) stopPings() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.pinging != nil && c.pinging.pongTimer != nil {
		c.pinging.pongTimer.Stop()
	}
}
