package herald

import (
	"bytes"
	"net/http"
	"time"

	"github.com/herald-go/herald/websocket"
)

// This file is Options.IdleMode: a WebSocket socket read by websocket.Conn.Serve in idle mode
// (no goroutine while the client sends nothing) instead of by a goroutine in Socket.read.

// serveIdle runs one WebSocket socket in idle mode. The handler returns at once; the socket's
// messages arrive in receiveIdle, on a worker of the connection's, and its end in endIdle.
func (s *Server) serveIdle(c *websocket.Conn, t *wsTransport, r *http.Request) {
	tt := s.meter(t, r)
	sock, ok := s.addSocket(tt, r)
	if !ok {
		_ = tt.Close(nil)
		return
	}
	if d := s.helloTimeout(); d > 0 {
		sock.mu.Lock()
		sock.authTimer = time.AfterFunc(d, func() { sock.closeNow(nil) })
		sock.mu.Unlock()
	}
	c.Serve(&websocket.Events{
		IdleMode: true,
		OnMessage: func(_ *websocket.Conn, _ websocket.MessageType, data []byte) {
			sock.receiveIdle(data)
		},
		OnClose: func(_ *websocket.Conn, err error) { sock.endIdle(err) },
	})
}

// receiveIdle is one turn of Socket.read's loop for a message that Serve delivered. data is
// valid only during the call, so it is copied (as Read would have). Messages that need
// processing are processed on a goroutine of their own, up to MaxInFlight at once, so that a
// slow one does not hold up those behind it (Socket.read hands reading over instead; here the
// connection's worker keeps reading).
func (s *Socket) receiveIdle(data []byte) {
	data = bytes.Clone(data)
	if m, ok := s.t.(*meteredTransport); ok {
		m.received(data)
	}
	s.pinged.Store(true)
	if s.isClosing() {
		return
	}
	msg, handle := s.dispatch(data)
	if handle == nil {
		return
	}
	select {
	case s.inflight <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	s.processing++
	s.wg.Add(1) // endIdle's Wait comes after the last receiveIdle
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.processCounted(msg, handle)
		<-s.inflight
	}()
}

// endIdle is the end of Socket.read, once the connection has closed.
func (s *Socket) endIdle(err error) {
	if m, ok := s.t.(*meteredTransport); ok {
		m.learn(receiveReason(err))
	}
	s.closeNow(nil)
	s.wg.Wait()
	s.server.subs.removeSocket(s, s.takeSubscriptions())
	s.server.removeSocket(s)
	if fn := s.server.opts.OnDisconnection; fn != nil {
		_ = s.guard("OnDisconnection", func() error { fn(s); return nil })
	}
}
