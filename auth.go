package herald

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
	// (401 with the error's text).
	Authenticate func(r *http.Request) (*Credentials, error)
	// Required refuses hellos without credentials (401 "Connection requires authentication").
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
	// MaxConnectionsPerUser bounds each user's sockets (with Index); a hello past it gets 503.
	// Zero means no bound.
	MaxConnectionsPerUser int
	// Verify re-checks a socket's credentials (a revoked session, a banned user) at most
	// every VerifyInterval, before a message is processed; an error answers 403 "Credential
	// verification failed" and disconnects the socket. Nil means never.
	Verify func(ctx context.Context, c *Credentials) error
	// VerifyInterval is the least time between two Verify calls for a socket. Zero means
	// the heartbeat interval (15 s).
	VerifyInterval time.Duration
}

// authenticator applies AuthOptions.
type authenticator struct {
	opts   AuthOptions
	sealer *sealer
}

func newAuthenticator(s *Server, o *AuthOptions) *authenticator {
	a := &authenticator{opts: *o}
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
	verified    time.Time
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

// authenticate runs hello's or reauth's authentication, as the reference's _authenticate.
func (s *Socket) authenticate(ctx context.Context, m *protocol.Message, reauth bool) error {
	a := s.server.auth
	if a == nil {
		return nil
	}
	if err := s.authByCookie(); err != nil {
		return err
	}
	hasAuth := protocol.Truthy(m.Auth)
	authenticated := s.credentials() != nil
	if !hasAuth && !authenticated && a.opts.Required {
		return errAuthRequired
	}
	if hasAuth && !reauth && authenticated {
		return errAlreadyAuth
	}
	s.mu.Lock()
	if s.authTimer != nil {
		s.authTimer.Stop()
	}
	s.mu.Unlock()
	if !hasAuth {
		return nil
	}
	if a.opts.Type == "direct" {
		var auth struct {
			Headers map[string]json.RawMessage `json:"headers"`
		}
		_ = json.Unmarshal(m.Auth, &auth)
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, a.opts.Endpoint, nil)
		if err != nil {
			return err
		}
		for k, v := range auth.Headers {
			r.Header.Set(k, protocol.JSString(v))
		}
		if xff := s.req.Header.Get("X-Forwarded-For"); xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		r.RemoteAddr = s.RemoteAddr()
		r.Host = s.req.Host
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
		return s.setCredentials(creds)
	}
	token, ok := protocol.String(m.Auth)
	if !ok {
		return errInvalidToken
	}
	creds, err := a.sealer.unseal(token)
	if err != nil {
		return errInvalidToken
	}
	return s.setCredentials(creds)
}

// authByCookie authenticates from the sealed cookie of the upgrade request (cookie auth).
func (s *Socket) authByCookie() error {
	a := s.server.auth
	if a.opts.Type != "cookie" {
		return nil
	}
	c, err := s.req.Cookie(a.opts.Cookie)
	if err != nil {
		return nil // no such cookie
	}
	creds, err := a.sealer.unseal(c.Value)
	if err != nil {
		return errInvalidCookie
	}
	return s.setCredentials(creds)
}

func (s *Socket) setCredentials(c *Credentials) error {
	if err := s.server.indexUser(s, c.User); err != nil {
		return err
	}
	s.mu.Lock()
	old := s.auth.credentials
	s.auth = authState{credentials: c, verified: time.Now()}
	s.mu.Unlock()
	if old != nil && old.User != "" && old.User != c.User {
		s.server.unindexUser(s, old.User)
	}
	return nil
}

// verifyAuth re-checks the credentials when VerifyInterval has passed.
func (s *Socket) verifyAuth() error {
	a := s.server.auth
	if a == nil || a.opts.Verify == nil {
		return nil
	}
	s.mu.Lock()
	creds := s.auth.credentials
	due := creds != nil && time.Since(s.auth.verified) >= a.opts.VerifyInterval
	if due {
		s.auth.verified = time.Now()
	}
	s.mu.Unlock()
	if !due {
		return nil
	}
	if err := a.opts.Verify(s.ctx, creds); err != nil {
		return errVerifyFailed
	}
	return nil
}

func (a *authenticator) servesEndpoint(r *http.Request) bool {
	return a.opts.Type != "direct" && r.URL.Path == a.opts.Endpoint
}

// serveEndpoint answers the token and cookie endpoint, as the reference's auth route.
func (a *authenticator) serveEndpoint(w http.ResponseWriter, r *http.Request) {
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

// unindexUser removes a socket from a user's index.
func (s *Server) unindexUser(sock *Socket, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.byUser[user]
	for i, x := range list {
		if x == sock {
			s.byUser[user] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(s.byUser[user]) == 0 {
		delete(s.byUser, user)
	}
}
