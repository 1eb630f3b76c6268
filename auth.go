package herald

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/herald-go/herald/internal/protocol"
)

// Credentials are what authentication established about a socket's client.
type Credentials struct {
	// User identifies the user: it indexes sockets for per-user limits and targeting, and
	// makes the credentials a "user" entity. Empty means application credentials.
	User string `json:"user,omitempty"`
	// Scope lists the client's scopes, which subscriptions may require.
	Scope []string `json:"scope,omitempty"`
	// Data holds anything else the application keeps with the credentials (a display name,
	// an id). Tokens and cookies carry it as JSON, so keep it small.
	Data map[string]any `json:"data,omitempty"`
}

// AuthOptions configures nes authentication. The three types work as in @hapi/nes:
//
//   - "direct" (the default): the client's hello carries headers ({headers: {authorization:
//     ...}}); Authenticate checks them for each connection.
//   - "token": the client first GETs Endpoint over HTTP, where Authenticate checks the
//     request; the answer carries a sealed token that the hello then presents.
//   - "cookie": the same GET sets a sealed cookie, which the browser sends with the
//     WebSocket handshake.
//
// Tokens and cookies are sealed with AES-256-GCM under a key derived (HKDF-SHA-256) from
// Password, so they cannot be read or forged, and they expire after TTL.
type AuthOptions struct {
	// Type is "direct", "token" or "cookie". Empty means "direct".
	Type string
	// Endpoint is the path of the token and cookie endpoint; nes requests for it get 404.
	// Empty means "/nes/auth".
	Endpoint string
	// Authenticate checks a request's credentials: for direct auth, a request carrying the
	// hello's headers; for token and cookie auth, the real request to Endpoint. It returns
	// nil credentials (and no error) when the request carries none; an error refuses them
	// (401 with the error's text, or the status of an *Error).
	//
	// At the token and cookie endpoint, nil credentials are answered 200
	// {"status":"unauthenticated"}, without a token or cookie, as @hapi/nes answers: a page
	// must look at "status", not only at the status code. Return an error (such as
	// NewError(401, "Missing credentials")) to have a request without credentials answered
	// 401 instead.
	Authenticate func(r *http.Request) (*Credentials, error)
	// Required refuses hellos without credentials (401 "Connection requires authentication").
	// Like every failed hello, the refusal is answered, then the socket is closed.
	// False means authentication is optional.
	Required bool
	// Password derives the sealing key for tokens and cookies; at least 32 bytes. Required for
	// the token and cookie types.
	Password string
	// TTL is how long tokens and cookies stay valid. Zero means 24 hours.
	TTL time.Duration
	// Cookie is the cookie's name. Empty means "nes".
	Cookie string
	// CookieInsecure drops the cookie's Secure attribute (for plain-HTTP development).
	CookieInsecure bool
	// CookieScriptable drops the cookie's HttpOnly attribute.
	CookieScriptable bool
	// CookieSameSite is the cookie's SameSite attribute. Zero means http.SameSiteStrictMode.
	CookieSameSite http.SameSite
	// CookiePath and CookieDomain scope the cookie. Empty CookiePath means "/".
	CookiePath, CookieDomain string
	// Timeout disconnects sockets that have not said hello this long after connecting, unless
	// Options.HelloTimeout is set (which applies with or without auth). Zero means 5 s;
	// negative turns it off.
	Timeout time.Duration
	// Index keeps sockets indexed by Credentials.User, for MaxConnectionsPerUser and for
	// Broadcast to a user.
	Index bool
	// MaxConnectionsPerUser bounds each user's sockets (with Index); a hello past it gets 503
	// and the socket is closed, and a reauth past it gets 503 and the socket is disconnected.
	// Zero means no bound. With Options.Broker it bounds each node's sockets of the user
	// (exactly); see MaxConnectionsPerUserCluster for a bound across nodes.
	MaxConnectionsPerUser int
	// MaxConnectionsPerUserCluster bounds each user's sockets across every node sharing
	// Options.Broker (with Index), through leases that the broker holds (broker.Leaser:
	// broker/redis and the memory hub hold them, broker/nats does not). Each socket holds
	// a lease, renewed every heartbeat interval and given back when the socket closes; the
	// leases of a node that died expire within three heartbeat intervals. A hello past it gets
	// 503, as with MaxConnectionsPerUser. Zero means no bound across nodes; without a broker
	// it is ignored.
	MaxConnectionsPerUserCluster int
	// ClusterLimitFailOpen admits sockets when the leases of MaxConnectionsPerUserCluster
	// cannot be checked (the broker is down). False means they are refused with 503 until
	// the broker is back.
	ClusterLimitFailOpen bool
	// Verify checks a socket's credentials (a revoked session, a banned user): at every hello
	// and reauth that presents credentials, whatever the auth type (an error answers 403
	// "Credential verification failed" and closes the socket), then again at most every
	// VerifyInterval, before a message is processed (an error answers 403 and disconnects the
	// socket) and before a publication, broadcast or update is delivered to the socket (an
	// error closes it, and the delivery is dropped). A socket whose verification is due sends
	// nothing until Verify has answered; other sockets are not held up. It runs on the
	// socket's goroutines, or on the goroutine of Socket.Send or Socket.Publish. Nil means
	// never (RevokeUser still works).
	Verify func(ctx context.Context, c *Credentials) error
	// VerifyInterval is the least time between two Verify calls for a socket. Zero means
	// the heartbeat interval (15 s).
	VerifyInterval time.Duration
}

// authenticator applies AuthOptions.
type authenticator struct {
	opts   AuthOptions
	sealer *sealer
	srv    *Server
}

func newAuthenticator(s *Server, o *AuthOptions) *authenticator {
	a := &authenticator{opts: *o, srv: s}
	if a.opts.Type == "" {
		a.opts.Type = "direct"
	}
	switch a.opts.Type {
	case "direct", "token", "cookie":
	default:
		panic("herald: AuthOptions.Type must be direct, token or cookie, not " + a.opts.Type)
	}
	if a.opts.Endpoint == "" {
		a.opts.Endpoint = "/nes/auth"
	}
	if a.opts.TTL <= 0 {
		a.opts.TTL = 24 * time.Hour
	}
	if a.opts.Cookie == "" {
		a.opts.Cookie = "nes"
	}
	if a.opts.CookiePath == "" {
		a.opts.CookiePath = "/"
	}
	if a.opts.CookieSameSite == 0 {
		a.opts.CookieSameSite = http.SameSiteStrictMode
	}
	if a.opts.Timeout == 0 {
		a.opts.Timeout = 5 * time.Second
	}
	if a.opts.VerifyInterval <= 0 {
		a.opts.VerifyInterval = s.heartbeat.Interval
		if s.heartbeat.Disabled {
			a.opts.VerifyInterval = defaultHeartbeatInterval
		}
	}
	if a.opts.Type != "direct" {
		sl, err := newSealer(a.opts.Password)
		if err != nil {
			panic(err)
		}
		a.sealer = sl
	}
	return a
}

// authState is a socket's authentication.
type authState struct {
	credentials *Credentials
	issued      time.Time     // when the credentials were established (a token's issue time)
	verified    time.Time     // the last time Verify accepted them
	verifying   chan struct{} // closed when the Verify running now returns; nil when none runs
	refused     bool          // Verify refused them: the socket is on its way out
}

// Credentials returns the socket's credentials, or nil when it is not authenticated.
func (s *Socket) Credentials() *Credentials { return s.credentials() }

func (s *Socket) credentials() *Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth.credentials
}

func (s *Socket) user() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userLocked()
}

// userLocked is user for a caller holding s.mu.
func (s *Socket) userLocked() string {
	if c := s.auth.credentials; c != nil {
		return c.User
	}
	return ""
}

// authenticate runs hello's or reauth's authentication, as the reference's _authenticate. One
// authentication runs at a time on a socket (authMu): the credentials, the user index and the
// subscriptions' user index change together.
func (s *Socket) authenticate(ctx context.Context, m *protocol.Message, reauth bool) error {
	a := s.server.auth
	if a == nil {
		return nil
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.credentials() == nil {
		if err := s.authByCookie(ctx); err != nil {
			return err
		}
	}
	hasAuth := protocol.Truthy(m.Auth)
	authenticated := s.credentials() != nil
	if !hasAuth && !authenticated && a.opts.Required {
		return errAuthRequired
	}
	if hasAuth && !reauth && authenticated {
		return errAlreadyAuth
	}
	if !hasAuth {
		return nil
	}
	if a.opts.Type == "direct" {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, a.opts.Endpoint, nil)
		if err != nil {
			return err
		}
		// The headers are read in one pass, in order (the last of names that differ only in
		// case wins, as in the reference), and bounded as a request's are.
		var headers json.RawMessage
		_ = protocol.Members(m.Auth, func(name string, v json.RawMessage) error {
			if name == "headers" {
				headers = v
			}
			return nil
		})
		n := 0
		if err := protocol.Members(headers, func(name string, v json.RawMessage) error {
			if n++; n > maxRequestHeaders {
				return errTooManyHeaders
			}
			r.Header.Set(name, protocol.JSString(v))
			return nil
		}); err != nil {
			return err
		}
		if xff := s.req.Header.Get("X-Forwarded-For"); xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		r.RemoteAddr = s.RemoteAddr()
		r.Host = s.req.Host
		issued := time.Now() // before Authenticate: a revocation while it runs refuses its answer
		var creds *Credentials
		if a.opts.Authenticate != nil {
			if creds, err = a.opts.Authenticate(r); err != nil {
				msg := err.Error()
				var e *Error
				if errors.As(err, &e) {
					msg = e.Message
				}
				return NewError(http.StatusUnauthorized, msg)
			}
		}
		if creds == nil {
			return nil
		}
		return s.setCredentials(ctx, creds, issued)
	}
	token, ok := protocol.String(m.Auth)
	if !ok {
		return errInvalidToken
	}
	creds, issued, err := a.sealer.unsealIssued(token, a.opts.TTL)
	if err != nil {
		return errInvalidToken
	}
	return s.setCredentials(ctx, creds, issued)
}

// authByCookie authenticates from the sealed cookie of the upgrade request (cookie auth).
func (s *Socket) authByCookie(ctx context.Context) error {
	a := s.server.auth
	if a.opts.Type != "cookie" {
		return nil
	}
	c, err := s.req.Cookie(a.opts.Cookie)
	if err != nil {
		return nil // no such cookie
	}
	creds, issued, err := a.sealer.unsealIssued(c.Value, a.opts.TTL)
	if err != nil {
		return errInvalidCookie
	}
	return s.setCredentials(ctx, creds, issued)
}

// setCredentials verifies new credentials (AuthOptions.Verify, and RevokeUser's revocations)
// and makes them the socket's. The caller holds authMu.
func (s *Socket) setCredentials(ctx context.Context, c *Credentials, issued time.Time) error {
	if v := s.server.auth.opts.Verify; v != nil {
		if err := v(ctx, c); err != nil {
			return errVerifyFailed
		}
	}
	hold, err := s.server.holdUser(ctx, s, c.User) // cluster-wide limit and user topic
	if err != nil {
		return err
	}
	err = s.server.bindCredentials(s, c, issued)
	s.server.settleUser(s, hold)
	return err
}

// bindCredentials gives a socket its credentials: in one critical section it checks the
// user's revocation and connection limit, moves the socket in the user index, and sets the
// credentials, so that RevokeUser and the per-user limit see every socket exactly once.
func (srv *Server) bindCredentials(sock *Socket, c *Credentials, issued time.Time) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if _, open := srv.sockets[sock]; !open {
		return ErrSocketClosed // cleaned up already: it must not enter the index again
	}
	if srv.revokedLocked(c.User, issued) {
		return errVerifyFailed
	}
	a := srv.auth
	if a.opts.Index && c.User != sock.indexedUser {
		if max := a.opts.MaxConnectionsPerUser; c.User != "" && max > 0 && len(srv.byUser[c.User]) >= max {
			return errTooManyForUser
		}
		srv.unindexLocked(sock)
		if c.User != "" {
			srv.byUser[c.User] = append(srv.byUser[c.User], sock)
			sock.indexedUser = c.User
		}
	}
	sock.mu.Lock()
	old := sock.userLocked()
	sock.auth = authState{credentials: c, issued: issued, verified: time.Now()}
	if old != c.User {
		for _, sub := range sock.subs {
			sub.reindex(sock, c.User)
		}
	}
	sock.mu.Unlock()
	return nil
}

// unindexLocked takes a socket out of the user index. srv.mu is held.
func (srv *Server) unindexLocked(sock *Socket) {
	user := sock.indexedUser
	if user == "" {
		return
	}
	sock.indexedUser = ""
	srv.dropUserLocked(sock)
	srv.byUser[user] = slices.DeleteFunc(srv.byUser[user], func(x *Socket) bool { return x == sock })
	if len(srv.byUser[user]) == 0 {
		delete(srv.byUser, user)
	}
}

// verifyAuth re-checks the credentials with AuthOptions.Verify when VerifyInterval has passed
// since they were last verified: before a message is processed, and before a publication,
// broadcast or update is delivered. Callers that find a verification running wait for its
// answer, so nothing is delivered on credentials being refused.
func (s *Socket) verifyAuth(ctx context.Context) error {
	a := s.server.auth
	if a == nil || a.opts.Verify == nil {
		return nil
	}
	s.mu.Lock()
	for s.auth.verifying != nil {
		ch := s.auth.verifying
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return errVerifyFailed
		}
		s.mu.Lock()
	}
	creds := s.auth.credentials
	switch {
	case creds == nil:
		s.mu.Unlock()
		return nil
	case s.auth.refused:
		s.mu.Unlock()
		return errVerifyFailed
	case time.Since(s.auth.verified) < a.opts.VerifyInterval:
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	s.auth.verifying = ch
	s.mu.Unlock()
	var err error
	if perr := s.guard("Verify", func() error { err = a.opts.Verify(ctx, creds); return nil }); perr != nil {
		err = perr
	}
	s.mu.Lock()
	current := s.auth.credentials == creds
	if current {
		s.auth.verifying = nil
		s.auth.verified = time.Now()
		s.auth.refused = err != nil
	}
	s.mu.Unlock()
	close(ch)
	if err != nil && current {
		return errVerifyFailed
	}
	return nil // refused credentials that a reauth replaced meanwhile do not count
}

// verifyDueLocked reports whether a delivery must wait for verifyAuth. s.mu is held.
func (s *Socket) verifyDueLocked() bool {
	a := s.server.auth
	return a != nil && a.opts.Verify != nil && s.auth.credentials != nil &&
		(s.auth.verifying != nil || s.auth.refused || time.Since(s.auth.verified) >= a.opts.VerifyInterval)
}

// RevokeUser ends a user's access at once: it closes the user's open sockets (the clients see
// a normal close and may reconnect), and refuses, at hello and reauth, every token and cookie
// issued to the user until now (403 "Credential verification failed"). Credentials
// established afterwards are not affected: a token the endpoint issues later, or a direct
// hello that Authenticate accepts, gets in; refuse those in Authenticate. It does not wait
// for the sockets to finish closing.
//
// The revocation is kept in this Server's memory for AuthOptions.TTL, the longest a token or
// cookie issued before it stays valid, and is lost on restart. With Options.Broker it
// applies on every node (and fails fast while the link is down); a node that starts later
// does not know it: keep revocations in a shared store and check them in AuthOptions.Verify,
// which runs at every hello and reauth and before deliveries, when that matters.
func (srv *Server) RevokeUser(user string) error {
	if user == "" {
		return errors.New("herald: RevokeUser needs a user (Credentials.User)")
	}
	if srv.auth == nil {
		return errors.New("herald: RevokeUser needs Options.Auth")
	}
	if srv.cluster != nil {
		return srv.cluster.publish("b", &envelope{kind: kindRevokeUser, user: user})
	}
	srv.revokeUserLocal(user)
	return nil
}

// revokeUserLocal applies RevokeUser on this node. It never waits.
func (srv *Server) revokeUserLocal(user string) {
	if srv.auth == nil {
		return
	}
	now := time.Now()
	var victims []*Socket
	srv.mu.Lock()
	for u, at := range srv.revoked {
		if now.Sub(at) >= srv.auth.opts.TTL {
			delete(srv.revoked, u)
		}
	}
	srv.revoked[user] = now
	for sock := range srv.sockets {
		sock.mu.Lock()
		if sock.userLocked() == user {
			victims = append(victims, sock)
		}
		sock.mu.Unlock()
	}
	srv.mu.Unlock()
	for _, sock := range victims {
		sock.closeNow(nil)
	}
}

// revokedLocked reports whether RevokeUser refuses credentials of user issued at issued.
// srv.mu is held.
func (srv *Server) revokedLocked(user string, issued time.Time) bool {
	if user == "" {
		return false
	}
	at, ok := srv.revoked[user]
	return ok && time.Since(at) < srv.auth.opts.TTL && !issued.After(at)
}

func (a *authenticator) servesEndpoint(r *http.Request) bool {
	return a.opts.Type != "direct" && r.URL.Path == a.opts.Endpoint
}

// serveEndpoint answers the token and cookie endpoint, as the reference's auth route. A
// request with no credentials (Authenticate returned nil, nil) gets 200
// {"status":"unauthenticated"}, as in @hapi/nes; the server's origin rule applies first.
func (a *authenticator) serveEndpoint(w http.ResponseWriter, r *http.Request) {
	if !a.srv.originAllowed(r, "auth endpoint") {
		a.srv.refuseOrigin(w, r)
		return
	}
	if a.srv.allowCORS(w, r) {
		return // a preflight, answered
	}
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "Not Found"})
		return
	}
	var creds *Credentials
	var err error
	if a.opts.Authenticate != nil {
		creds, err = a.opts.Authenticate(r)
	}
	if err != nil {
		e := asError(err)
		if e.StatusCode >= 500 || e.err != nil {
			e = NewError(http.StatusUnauthorized, err.Error())
		}
		writeJSON(w, e.StatusCode, map[string]any{"statusCode": e.StatusCode, "error": http.StatusText(e.StatusCode), "message": e.Message})
		return
	}
	if creds == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "unauthenticated"})
		return
	}
	sealed, err := a.sealer.seal(creds, a.opts.TTL)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"statusCode": 500, "error": "Internal Server Error", "message": "An internal server error occurred"})
		return
	}
	if a.opts.Type == "cookie" {
		http.SetCookie(w, &http.Cookie{
			Name: a.opts.Cookie, Value: sealed, Path: a.opts.CookiePath, Domain: a.opts.CookieDomain,
			MaxAge: int(a.opts.TTL.Seconds()), Secure: !a.opts.CookieInsecure, HttpOnly: !a.opts.CookieScriptable,
			SameSite: a.opts.CookieSameSite,
		})
		writeJSON(w, http.StatusOK, map[string]string{"status": "authenticated"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "authenticated", "token": sealed})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := protocol.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
