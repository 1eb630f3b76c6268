package herald

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/herald-go/herald/websocket"
)

// originRule is the server's one rule for browsers' requests (those with an Origin header), the
// same for the WebSocket upgrade, the fallback's endpoints and the auth endpoint: the server's
// own host, Options.Origins (with the deprecated Options.Origin), and what Options.WebSocket
// says about origins.
type originRule struct {
	origins  []string                 // Options.Origins, then Options.Origin
	patterns []string                 // Options.WebSocket.OriginPatterns (deprecated)
	check    func(*http.Request) bool // Options.WebSocket.CheckOrigin, which replaces the rest
	match    *websocket.Options       // origins and patterns, for websocket.OriginAllowed
}

// newOriginRule builds the server's origin rule. It panics on an invalid entry of
// Options.Origins, as NewServer documents.
func (s *Server) newOriginRule() *originRule {
	o := &originRule{origins: slices.Concat(s.opts.Origins, s.opts.Origin)}
	if w := s.opts.WebSocket; w != nil {
		o.origins = slices.Concat(o.origins, w.Origins)
		//lint:ignore SA1019 the deprecated field keeps working
		o.patterns, o.check = w.OriginPatterns, w.CheckOrigin
	}
	if err := websocket.ValidateOrigins(o.origins); err != nil {
		panic(fmt.Sprintf("herald: Options.Origins: %s", strings.TrimPrefix(err.Error(), "websocket: ")))
	}
	//lint:ignore SA1019 the deprecated field keeps working
	o.match = &websocket.Options{Origins: o.origins, OriginPatterns: o.patterns}
	return o
}

// originAllowed reports whether r may go through on transport ("websocket", "fallback" or "auth
// endpoint"). A refusal is logged at Info level with its reason.
func (s *Server) originAllowed(r *http.Request, transport string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	rule := s.origins
	reason := "neither the server's host nor listed in Options.Origins"
	if rule.check != nil {
		if rule.check(r) {
			return true
		}
		reason = "Options.WebSocket.CheckOrigin returned false"
	} else if websocket.OriginAllowed(r, rule.match) {
		return true
	}
	s.log.Info("herald: origin refused", "transport", transport, "origin", origin, "host", r.Host,
		"remote", r.RemoteAddr, "reason", reason)
	return false
}

// originRefusal is the message of a refused origin's 403, naming the option that allows it.
func (s *Server) originRefusal(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if s.origins.check != nil {
		return fmt.Sprintf("origin %q is not allowed (herald.Options.WebSocket.CheckOrigin refused it)", origin)
	}
	hint := ""
	if u, err := url.Parse(origin); err == nil && u.Scheme != "" && u.Host != "" && u.Path == "" {
		hint = fmt.Sprintf(": to allow it, add %q to herald.Options.Origins", u.Scheme+"://"+u.Host)
	}
	return fmt.Sprintf("origin %q is not allowed: it is not this server's host %q%s", origin, r.Host, hint)
}

// refuseOrigin answers a refused origin's request with 403 and a JSON body in nes's error
// shape.
func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusForbidden, map[string]any{"statusCode": 403, "error": "Forbidden", "message": "herald: " + s.originRefusal(r)})
}

// applyOriginRule makes the nes WebSocket connections follow the server's origin rule: the
// check runs first in Verify, with a 403 that names herald's option, and the WebSocket's own
// origin check lets everything through to it.
func (s *Server) applyOriginRule(w *websocket.Options) {
	s.origins = s.newOriginRule()
	verify := w.Verify
	//lint:ignore SA1019 the deprecated field is folded into the rule
	w.Origins, w.OriginPatterns = nil, nil
	w.CheckOrigin = func(*http.Request) bool { return true } // decided in Verify, below
	w.Verify = func(r *http.Request) error {
		if !s.originAllowed(r, "websocket") {
			return &websocket.HTTPError{Status: http.StatusForbidden, Message: "herald: " + s.originRefusal(r)}
		}
		if verify != nil {
			return verify(r)
		}
		return nil
	}
}

// allowCORS answers an allowed cross-origin request to the auth endpoint with CORS headers
// (credentials included), so that a page of another allowed origin can fetch a token or have
// the cookie set. It reports whether r was a preflight, which it has answered.
func (s *Server) allowCORS(w http.ResponseWriter, r *http.Request) (preflight bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return false // same origin: no CORS needed
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET")
	if hs := r.Header.Get("Access-Control-Request-Headers"); hs != "" {
		h.Set("Access-Control-Allow-Headers", hs)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
