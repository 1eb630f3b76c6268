package herald

import (
	"bytes"
	"net/http"

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
	sock.armHelloTimeout()
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
	msg, handle := s.admit(data)
	if handle == nil {
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
	s.cleanUp()
}
