package herald

import (
	"context"
	"net/http"
)

type socketKey struct{}
type credentialsKey struct{}

// requestOrigin is what a nes request's context carries: one value, one allocation.
type requestOrigin struct {
	socket      *Socket
	credentials *Credentials
}

// SocketFrom returns the socket a request came from, when the application's handler serves
// a nes request, and nil for ordinary HTTP requests.
func SocketFrom(ctx context.Context) *Socket {
	if o, ok := ctx.Value(socketKey{}).(*requestOrigin); ok {
		return o.socket
	}
	return nil
}

// CredentialsFrom returns the credentials of the request: those of the socket for a nes
// request (nes requests may not carry an Authorization header; the socket's authentication
// stands for them), those Authenticated established for an HTTP request, and nil otherwise.
func CredentialsFrom(ctx context.Context) *Credentials {
	if o, ok := ctx.Value(socketKey{}).(*requestOrigin); ok && o.credentials != nil {
		return o.credentials
	}
	c, _ := ctx.Value(credentialsKey{}).(*Credentials)
	return c
}

// Authenticated wraps a handler that needs credentials. A nes request passes with its
// socket's credentials; any other request is checked by AuthOptions.Authenticate. Requests
// with no credentials get 401, with the error's text when Authenticate refused them. The
// handler reads the credentials with CredentialsFrom.
//
// It is the piece that lets one route serve both worlds: a browser calling it over HTTP with
// a Basic or bearer header, and a nes client whose connection authenticated once.
func (s *Server) Authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if CredentialsFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		fromSocket := SocketFrom(r.Context()) != nil
		var creds *Credentials
		var err error
		if !fromSocket && s.auth != nil && s.auth.opts.Authenticate != nil {
			creds, err = s.auth.opts.Authenticate(r)
		}
		if creds == nil {
			msg := "Missing authentication"
			if err != nil {
				msg = err.Error()
			}
			if r.Header.Get("Authorization") == "" || fromSocket {
				w.Header().Set("WWW-Authenticate", "Basic")
			}
			writeJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "error": "Unauthorized", "message": msg})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), credentialsKey{}, creds)))
	})
}
