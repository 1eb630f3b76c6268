package fallback

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/eventsource"
)

// Server serves sessions over HTTP: event streams and long-polls down, POSTs up. See the
// package doc for its HTTP surface.
//
// Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	signer   ticketSigner
	sessions Sessions
	registry *eventsource.Registry
	cop      *http.CrossOriginProtection
	closed   atomic.Bool // Close was called: no new session
	cluster  *cluster    // nil without Options.Broker
}

// NewServer returns a server of sessions. Options.Accept is required.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil || opts.Accept == nil {
		return nil, errors.New("fallback: Options.Accept is required: it serves each new session")
	}
	o := opts.withDefaults()
	if o.Grace <= o.RetryMax {
		return nil, fmt.Errorf("fallback: Options.Grace (%v) must be longer than RetryMax (%v): a browser whose stream drops waits up to RetryMax before it resumes", o.Grace, o.RetryMax)
	}
	srv := &Server{opts: o, signer: ticketSigner{key: o.Key}, sessions: o.Sessions,
		registry: &eventsource.Registry{}, cop: http.NewCrossOriginProtection()}
	if node := o.clusterNode(); node != nil {
		if len(opts.Key) == 0 {
			return nil, errors.New("fallback: Options.Key is required with Options.Broker: every node must check the tickets the others sign")
		}
		srv.cluster = newCluster(srv, node)
	}
	return srv, nil
}

// The control events a session sends down, beside its messages (which have no event type).
// They are prefixed so that none is taken for one of EventSource's own events ("open",
// "error").
const (
	EventOpen   = "herald-open"   // the session is open (or resumed): its ticket and limits
	EventReset  = "herald-reset"  // the session could not be resumed: a new one follows
	EventClose  = "herald-close"  // the server ended the session: do not resume it
	EventRotate = "herald-rotate" // the stream ends on purpose: resume at once
)

// Endpoints of a Server, as Endpoint names them.
const (
	EndpointStream = "sse"
	EndpointSend   = "send"
	EndpointPoll   = "poll"
)

// Endpoint returns which of the server's endpoints r is for (EndpointStream, EndpointSend or
// EndpointPoll), or "" when it is for none.
func (srv *Server) Endpoint(r *http.Request) string {
	p := r.URL.Path
	for _, e := range []string{EndpointStream, EndpointSend, EndpointPoll} {
		if srv.opts.Path != "" && p == srv.opts.Path+"/"+e || srv.opts.Path == "" && strings.HasSuffix(p, "/nes/"+e) {
			return e
		}
	}
	return ""
}

// ServeHTTP serves the endpoint r is for; other requests get 404.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint := srv.Endpoint(r)
	if endpoint == "" {
		http.NotFound(w, r)
		return
	}
	if !srv.originAllowed(r) {
		srv.refuse(w, r, http.StatusForbidden, "origin not allowed (fallback.Options.CheckOrigin; on a herald nes server, herald.Options.Origins)")
		return
	}
	srv.allowCORS(w, r)
	if r.Method == http.MethodOptions {
		srv.preflight(w, r)
		return
	}
	switch endpoint {
	case EndpointStream:
		srv.serveStream(w, r)
	case EndpointSend:
		srv.serveSend(w, r)
	case EndpointPoll:
		srv.servePoll(w, r)
	}
}

// Close ends every session (the clients hear close code 1001) and every stream, and refuses
// new sessions (streams and polls) with 503.
func (srv *Server) Close() {
	srv.closed.Store(true)
	srv.sessions.Range(func(s *Session) bool {
		s.end(ErrClosed, closeGoingAway)
		s.forget() // one that lingered, closed, for its client
		return true
	})
	srv.registry.Shutdown()
	if srv.cluster != nil {
		srv.cluster.wait()
	}
}

// originAllowed applies Options.CheckOrigin to browser requests.
func (srv *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if srv.opts.CheckOrigin != nil {
		return srv.opts.CheckOrigin(r)
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// allowCORS answers a cross-origin request that originAllowed let through with the CORS
// headers, credentials included.
func (srv *Server) allowCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", "Herald-Expected-Seq, Retry-After")
	h.Add("Vary", "Origin")
}

func (srv *Server) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Herald-Ticket, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// refuse answers with status and a short JSON body saying why.
func (srv *Server) refuse(w http.ResponseWriter, r *http.Request, status int, why string) {
	if srv.opts.Logger != nil {
		srv.opts.Logger.Debug("fallback: request refused", "status", status, "reason", why,
			"path", r.URL.Path, "remote", r.RemoteAddr)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"statusCode": status, "error": http.StatusText(status), "message": why})
	_, _ = w.Write(b)
}

// bindingOf is the value a session opened by r is bound to: a digest of Options.BindCookie's
// value.
func (srv *Server) bindingOf(r *http.Request) string {
	if srv.opts.BindCookie == "" {
		return ""
	}
	c, err := r.Cookie(srv.opts.BindCookie)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(c.Value))
	return hex.EncodeToString(sum[:])
}

// lookup finds the session a ticket names for request r, or says why not, with the status to
// answer.
func (srv *Server) lookup(r *http.Request, ticket string) (*Session, int, string) {
	node, id, err := srv.signer.verify(ticket)
	switch {
	case err != nil:
		return nil, http.StatusNotFound, "unknown session: the ticket is not valid"
	case node != srv.opts.Node:
		return nil, http.StatusNotFound, "unknown session: another node holds it"
	}
	s := srv.sessions.Load(keyOf(id))
	switch {
	case s == nil:
		return nil, http.StatusGone, "session ended: open a new one and say hello again"
	case !sameOrigin(s.origin, r.Header.Get("Origin")) || s.binding != srv.bindingOf(r):
		return nil, http.StatusForbidden, "the session belongs to another origin or another cookie"
	}
	return s, 0, ""
}

// remote reports whether a ticket that lookup answered with status names a session another
// node of the cluster holds, and which node and session.
func (srv *Server) remote(ticket string, status int) (owner, key string, ok bool) {
	if srv.cluster == nil || status != http.StatusNotFound {
		return "", "", false
	}
	node, id, err := srv.signer.verify(ticket)
	if err != nil || node == srv.opts.Node {
		return "", "", false
	}
	return node, keyOf(id), true
}

// sameOrigin compares the origin a session was opened from with a request's. Either may be
// missing: browsers send no Origin with a same-origin GET (the EventSource) but do with a POST,
// and clients that are not browsers send none; the origin check has already vetted a present
// one.
func sameOrigin(session, request string) bool {
	return session == "" || request == "" || session == request
}

func keyOf(id [sessionIDLen]byte) string { return hex.EncodeToString(id[:]) }

// newSession opens a session for request r and stores it; Accept is not called yet.
// After Close it returns a session that has already ended (Close's Range may have run before
// Store: the check after Store catches that).
func (srv *Server) newSession(r *http.Request) *Session {
	s := newSession(srv, r)
	srv.sessions.Store(s)
	if srv.closed.Load() {
		s.end(ErrClosed, closeGoingAway)
	}
	return s
}

// retry draws a stream's retry time between RetryMin and RetryMax.
func (srv *Server) retry() time.Duration {
	lo, hi := srv.opts.RetryMin, srv.opts.RetryMax
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// openInfo is the data of an open event: what the client needs to use the session.
type openInfo struct {
	Ticket      string `json:"ticket"`
	Resumed     bool   `json:"resumed"`
	Seq         uint64 `json:"seq"` // the seq the client's next POST carries
	MaxBody     int64  `json:"maxBody"`
	MaxMessages int    `json:"maxMessages"`
	Grace       int64  `json:"grace"` // ms
}

// openEvent returns the open event's data. s.mu is held.
func (s *Session) openEvent(resumed bool) string {
	o := &s.srv.opts
	b, _ := json.Marshal(openInfo{Ticket: s.ticket, Resumed: resumed, Seq: s.inSeq,
		MaxBody: o.MaxBody, MaxMessages: o.MaxMessages, Grace: o.Grace.Milliseconds()})
	return string(b)
}

// closeCode is the code of a close event, as a WebSocket close code.
type closeCode int

const (
	closeNormal     closeCode = 1000
	closeGoingAway  closeCode = 1001 // the server shuts down: come back, elsewhere if need be
	closeError      closeCode = 1011
	closeBufferFull closeCode = 1013 // the client did not take its messages
	closeExpired    closeCode = 1001
)

func (c closeCode) json() string {
	reason := map[closeCode]string{closeNormal: "", closeGoingAway: "going away", closeError: "internal error",
		closeBufferFull: "the client did not take its messages"}[c]
	b, _ := json.Marshal(map[string]any{"code": int(c), "reason": reason})
	return string(b)
}

func formatSeq(n uint64) string { return strconv.FormatUint(n, 10) }

// parseEventID splits an event id, "TICKET.SEQ", as Last-Event-ID brings it back.
func parseEventID(id string) (ticket string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	return id[:i], seq, err == nil
}
