package herald

import (
	"sync"
	"time"
)

// heartbeater is the server's one heartbeat timer: every interval it pings every socket, and
// a timeout later disconnects the sockets that showed no life since the previous check.
type heartbeater struct {
	s       *Server
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

var pingMessage = []byte(`{"type":"ping"}`)

func startHeartbeat(s *Server) *heartbeater {
	h := &heartbeater{s: s}
	h.schedule(s.heartbeat.Interval, h.ping)
	return h
}

func (h *heartbeater) ping() {
	sockets := h.s.socketsSnapshot("")
	for _, sock := range sockets {
		sock.enqueue(outgoing{data: pingMessage, ping: true})
	}
	h.schedule(h.s.heartbeat.Timeout, func() { h.check(sockets) })
}

func (h *heartbeater) check(sockets []*Socket) {
	for _, sock := range sockets {
		if !sock.active() {
			sock.noteHeartbeatTimeout()
			sock.closeNow(nil)
			continue
		}
		sock.pinged.Store(false)
	}
	h.schedule(h.s.heartbeat.Interval-h.s.heartbeat.Timeout, h.ping)
}

func (h *heartbeater) schedule(d time.Duration, fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.timer = time.AfterFunc(d, fn)
	}
}

func (h *heartbeater) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
}
