package fallback

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/herald-go/herald/eventsource"
)

// serveStream opens a session's event stream (GET, as a browser's EventSource asks, or POST):
// a new session, or the session that Last-Event-ID names, resumed after the last message the
// client has. A session that cannot be resumed gets a reset event, and the stream goes on with
// a new session.
func (srv *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		srv.refuse(w, r, http.StatusMethodNotAllowed, "the stream is opened with GET or POST")
		return
	}
	esOpts := &eventsource.Options{
		Retry:        srv.retry(),
		PingInterval: srv.opts.KeepAlive,
		WriteTimeout: srv.opts.WriteTimeout,
		// A resume writes the whole buffer at once (attach): the queue must take it, or the
		// stream fails with ErrSlowClient before the client gets a message, and the next
		// resume fails the same way. 256 bytes per message are for the event's id and fields.
		QueueLimit: srv.opts.BufferBytes + 256*srv.opts.BufferMessages,
		Registry:   srv.registry,
	}
	var resume *Session
	var last uint64
	reset := ""
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		ticket, seq, ok := parseEventID(id)
		s, status, why := (*Session)(nil), 0, ""
		if ok {
			s, status, why = srv.lookup(r, ticket)
		}
		owner, key, remote := srv.remote(ticket, status)
		switch {
		case !ok:
			reset = "the Last-Event-ID is not one of this server's"
		case remote:
			// Another node holds the session: it relays the session's events to this stream.
			served, why := srv.cluster.streamRemote(w, r, owner, key, seq, esOpts)
			if served {
				return
			}
			reset = why
		case status == http.StatusForbidden:
			srv.refuse(w, r, status, why) // another client's ticket: no session for it
			return
		case s == nil:
			reset = why
		default:
			resume, last = s, seq
		}
	}
	es, err := eventsource.New(w, r, esOpts)
	if err != nil {
		return // New answered (503 while shutting down)
	}
	s := resume
	if s != nil && !s.attach(es, last, true) {
		reset = "the messages after the last one received are no longer buffered"
		s.end(ErrReset, closeNormal)
		s = nil
	}
	srv.meterResume(resume != nil, s != nil, reset != "")
	if s == nil {
		if reset != "" {
			_ = es.Send(reasonJSON(reset), eventsource.Event{Type: EventReset})
		}
		s = srv.newSession(r)
		s.attach(es, 0, false)
		go srv.opts.Accept(s)
	}
	var rotation *time.Timer
	if srv.opts.MaxStreamAge > 0 {
		rotation = time.AfterFunc(srv.opts.MaxStreamAge, func() {
			s.mu.Lock()
			if s.stream == es {
				s.rotate()
			}
			s.mu.Unlock()
		})
	}
	ended := func() {
		<-es.Done()
		if rotation != nil {
			rotation.Stop()
		}
		s.detach(es)
	}
	if es.Hijacked() {
		go ended()
		return
	}
	ended()
}

// ErrReset ends a session that its client could not resume: messages it missed were no longer
// buffered. The client starts again with a new session.
var ErrReset = errorString("fallback: the session could not be resumed")

type errorString string

func (e errorString) Error() string { return string(e) }

// attach makes es the session's stream, after the client's last message: it sends the open
// event, then every buffered message after last. It reports false, attaching nothing, when a
// message after last is no longer buffered.
func (s *Session) attach(es sink, last uint64, resumed bool) bool {
	s.mu.Lock()
	if s.closed { // a session that lingers for its client to hear the close
		for _, e := range s.tell(last) {
			_ = es.Send(e.Data, eventsource.Event{Type: e.Event, ID: e.ID})
		}
		s.mu.Unlock()
		s.forget()
		go func() { _ = es.Close() }()
		return true
	}
	if resumed && !s.canResume(last) {
		s.mu.Unlock()
		return false
	}
	s.ack(last)
	old := s.stream
	s.stream, s.streamOut = es, 0
	s.stopGrace()
	_ = es.Send(s.openEvent(resumed), eventsource.Event{Type: EventOpen, ID: s.eventID(last)})
	s.sent = last
	for _, e := range s.ring {
		if e.seq > last && s.stream == es {
			s.write(e)
		}
	}
	s.mu.Unlock()
	if old != nil {
		go func() { _ = old.Close() }()
	}
	return true
}

// reasonJSON is the data of a reset event: {"reason": reason}.
func reasonJSON(reason string) string {
	b, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	return string(b)
}
