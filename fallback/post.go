package fallback

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// batch is the body of a POST to the send endpoint.
type batch struct {
	// Seq numbers the batch: 1 for a session's first, one more for each next.
	Seq uint64 `json:"seq"`
	// Messages are the messages, in order.
	Messages []string `json:"messages"`
	// Ack, when present, is the last message down that the client has.
	Ack *uint64 `json:"ack,omitempty"`
	// Close ends the session, after the batch's messages: the client is leaving.
	Close bool `json:"close,omitempty"`
}

// serveSend applies one batch of messages to a session: strictly in order, each batch once.
func (srv *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	s, ok := srv.postSession(w, r, EndpointSend)
	if !ok {
		return
	}
	if !s.beginPost() {
		srv.answerSend(w, r, http.StatusTooManyRequests, 0)
		return
	}
	defer s.endPost()
	var b batch
	if !srv.readJSON(w, r, &b) {
		return
	}
	if len(b.Messages) > srv.opts.MaxMessages {
		srv.answerSend(w, r, http.StatusRequestEntityTooLarge, 0)
		return
	}
	status, expected := s.apply(&b)
	srv.answerSend(w, r, status, expected)
}

// answerSend answers a POST to send with the status of applying its batch, or of refusing it
// before (429, 413), here or on the session's owner (cluster.go).
func (srv *Server) answerSend(w http.ResponseWriter, r *http.Request, status int, expected uint64) {
	switch status {
	case http.StatusNoContent:
		w.WriteHeader(status)
	case http.StatusConflict:
		w.Header().Set("Herald-Expected-Seq", strconv.FormatUint(expected, 10))
		srv.refuse(w, r, status, "a batch is missing: send seq "+strconv.FormatUint(expected, 10)+" first")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		srv.refuse(w, r, status, "the session is busy: retry the same batch shortly")
	case http.StatusGone:
		srv.refuse(w, r, status, "session ended: open a new one and say hello again")
	case http.StatusTooManyRequests:
		srv.refuse(w, r, status, "another POST of this session is in flight: send one at a time")
	case http.StatusRequestEntityTooLarge:
		srv.refuse(w, r, status, "too many messages in one POST (the open event's maxMessages)")
	default:
		srv.refuseStatus(w, r, status)
	}
}

// postSession checks what every POST of a session must carry and returns the session. A
// session that another node of the cluster holds is handed to it (see cluster.go), and
// postSession reports false, having answered.
func (srv *Server) postSession(w http.ResponseWriter, r *http.Request, endpoint string) (*Session, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		srv.refuse(w, r, http.StatusMethodNotAllowed, "use POST")
		return nil, false
	}
	if !srv.postAllowed(w, r) {
		return nil, false
	}
	ticket := r.Header.Get("Herald-Ticket")
	if ticket == "" {
		srv.refuse(w, r, http.StatusBadRequest, "the Herald-Ticket header is missing")
		return nil, false
	}
	s, status, why := srv.lookup(r, ticket)
	if owner, key, ok := srv.remote(ticket, status); ok {
		if endpoint == EndpointPoll {
			srv.cluster.pollRemote(w, r, owner, key)
		} else {
			srv.cluster.sendRemote(w, r, owner, key)
		}
		return nil, false
	}
	if s == nil {
		srv.refuse(w, r, status, why)
		return nil, false
	}
	return s, true
}

// postAllowed refuses what a cross-site form or script could send: a body that is not JSON
// (forms can send only form and text types without a preflight), and a cross-origin request
// that the origin check did not allow.
func (srv *Server) postAllowed(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		srv.refuse(w, r, http.StatusUnsupportedMediaType, "the body must be application/json")
		return false
	}
	if r.Header.Get("Origin") == "" {
		if err := srv.cop.Check(r); err != nil {
			srv.refuse(w, r, http.StatusForbidden, "cross-origin request refused")
			return false
		}
	}
	return true
}

// readJSON reads a body of at most MaxBody bytes into v, answering 413 or 400 when it cannot.
func (srv *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, srv.opts.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		srv.refuse(w, r, http.StatusRequestEntityTooLarge, "the body is larger than the open event's maxBody")
		return false
	case err != nil:
		srv.refuse(w, r, http.StatusBadRequest, "the body could not be read")
		return false
	case len(body) == 0:
		return true
	case json.Unmarshal(body, v) != nil:
		srv.refuse(w, r, http.StatusBadRequest, "the body is not the JSON the endpoint expects")
		return false
	}
	return true
}

func (s *Session) beginPost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.posting {
		return false
	}
	s.posting = true
	return true
}

func (s *Session) endPost() {
	s.mu.Lock()
	s.posting = false
	s.mu.Unlock()
}

// apply takes a batch into the inbox if it is the next one, and returns the status to answer
// (with the seq expected, for 409).
func (s *Session) apply(b *batch) (status int, expected uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return http.StatusGone, 0
	}
	if b.Ack != nil {
		s.ack(*b.Ack)
	}
	switch {
	case b.Seq < s.inSeq: // a retry of a batch already applied
		if b.Close {
			s.closeByClient()
		}
		return http.StatusNoContent, 0
	case b.Seq > s.inSeq:
		return http.StatusConflict, s.inSeq
	}
	size := 0
	for _, m := range b.Messages {
		size += len(m)
	}
	if s.inboxBytes > 0 && s.inboxBytes+size > s.srv.opts.InboxBytes {
		return http.StatusServiceUnavailable, 0
	}
	for _, m := range b.Messages {
		s.inbox = append(s.inbox, []byte(m))
	}
	s.inboxBytes += size
	s.inSeq++
	select {
	case s.inboxWake <- struct{}{}:
	default:
	}
	if b.Close {
		s.closeByClient()
	}
	return http.StatusNoContent, 0
}

// closeByClient ends a session whose client said goodbye. s.mu is held.
func (s *Session) closeByClient() {
	s.closed = true
	s.closeErr = ErrClientClosed
	s.closeCode = closeNormal
	go s.finish(false)
}

// ErrClientClosed ends a session whose client said it is leaving.
var ErrClientClosed = errorString("fallback: the client closed the session")
