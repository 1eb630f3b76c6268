package fallback

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// pollEvent is one event of a long-poll's answer, as the stream would carry it.
type pollEvent struct {
	Event string `json:"event,omitempty"` // EventOpen, EventReset, EventClose; empty for a message
	ID    string `json:"id,omitempty"`
	Data  string `json:"data"`
}

// servePoll answers a long-poll: the messages after the client's last one as soon as there
// are any, or nothing after PollTimeout. Without a Herald-Ticket it opens a new session and
// answers its open event at once.
func (srv *Server) servePoll(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		srv.refuse(w, r, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if r.Header.Get("Herald-Ticket") == "" {
		if !srv.postAllowed(w, r) {
			return
		}
		if srv.closed.Load() {
			srv.refuse(w, r, http.StatusServiceUnavailable, "the server is shutting down")
			return
		}
		s := srv.newSession(r)
		s.mu.Lock()
		events := []pollEvent{{Event: EventOpen, ID: s.eventID(0), Data: s.openEvent(false)}}
		s.startGrace()
		s.mu.Unlock()
		go srv.opts.Accept(s)
		writePoll(w, events)
		return
	}
	s, ok := srv.postSession(w, r, EndpointPoll)
	if !ok {
		return
	}
	var body struct {
		Last uint64 `json:"last"`
	}
	if !srv.readJSON(w, r, &body) {
		return
	}
	events, resumable := s.waitPoll(r.Context(), body.Last, srv.opts.PollTimeout)
	if !resumable {
		srv.meterResume(true, false, true)
		s.end(ErrReset, closeNormal)
		events = srv.resetPoll(r)
	}
	writePoll(w, events)
}

// resetPoll opens a new session for a poll whose session could not be resumed, and returns
// the answer: a reset event, then the new session's open event.
func (srv *Server) resetPoll(r *http.Request) []pollEvent {
	fresh := srv.newSession(r)
	fresh.mu.Lock()
	events := []pollEvent{
		{Event: EventReset, Data: reasonJSON("the messages after the last one received are no longer buffered")},
		{Event: EventOpen, ID: fresh.eventID(0), Data: fresh.openEvent(false)},
	}
	fresh.startGrace()
	fresh.mu.Unlock()
	go srv.opts.Accept(fresh)
	return events
}

// waitPoll waits for messages after last, up to wait or until ctx ends. It reports
// false when a message after last is no longer buffered.
func (s *Session) waitPoll(ctx context.Context, last uint64, wait time.Duration) ([]pollEvent, bool) {
	s.mu.Lock()
	if s.closed { // a session that lingers for its client to hear the close
		events := s.tell(last)
		s.mu.Unlock()
		s.forget()
		return events, true
	}
	if !s.canResume(last) {
		s.mu.Unlock()
		return nil, false
	}
	if s.stream != nil { // the client moved from its stream to polling
		es := s.stream
		s.stream = nil
		go func() { _ = es.Close() }()
	}
	s.wakePoll() // a poll still waiting was given up by the client: it answers empty
	s.pollGen++
	gen := s.pollGen
	s.ack(last)
	s.polling = true
	s.stopGrace()
	wake := make(chan struct{})
	if len(s.ring) == 0 && !s.closed {
		s.poll = wake
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		if s.poll == wake {
			s.poll = nil
		}
	}
	var events []pollEvent
	if s.pollGen == gen { // not replaced by a newer poll
		s.polling = false
		if s.closed {
			events = s.tell(last)
		} else {
			for _, e := range s.ring {
				if e.seq > last {
					events = append(events, pollEvent{ID: s.eventID(e.seq), Data: e.data})
				}
			}
		}
		s.startGrace()
	}
	s.mu.Unlock()
	return events, true
}

func writePoll(w http.ResponseWriter, events []pollEvent) {
	if events == nil {
		events = []pollEvent{}
	}
	b, _ := json.Marshal(struct {
		Events []pollEvent `json:"events"`
	}{events})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache, no-transform")
	_, _ = w.Write(b)
}
