package websocket

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Origin patterns, as Options.Origins (and herald's Options.Origins) take them:
//
//	"*"                     every origin
//	"https://example.com"   that scheme and host, on the scheme's default port
//	"https://example.com:8443", "http://localhost:*"   a given port, or any port
//	"example.com"           that host on its default port, whatever the scheme
//	"*.example.com"         every subdomain (not example.com itself), with or without a scheme
//
// Hosts compare without regard to case, and a trailing "/" is ignored. Anything else (a path,
// a query, user info, a wildcard elsewhere, the "null" origin) is an invalid pattern.

// ValidateOrigins checks patterns in the syntax of Options.Origins and returns an error naming
// the first invalid one and why. Use it on patterns read from configuration, before handing
// them to Upgrade or to herald.NewServer (which panics on an invalid pattern).
func ValidateOrigins(patterns []string) error {
	for _, p := range patterns {
		if _, err := parseOriginPattern(p); err != nil {
			return err
		}
	}
	return nil
}

// originPattern is one parsed entry of Options.Origins.
type originPattern struct {
	any       bool   // "*"
	scheme    string // "" for any
	host      string // lower case; without the "*." of a subdomain pattern
	subdomain bool   // "*.host"
	port      string // "" for the default, "*" for any
}

// parseOriginPattern parses one entry of Options.Origins.
func parseOriginPattern(p string) (originPattern, error) {
	bad := func(why string) (originPattern, error) {
		return originPattern{}, fmt.Errorf("websocket: invalid origin pattern %q: %s", p, why)
	}
	if p == "*" {
		return originPattern{any: true}, nil
	}
	if p == "" {
		return bad(`empty (use "*" for every origin)`)
	}
	if strings.TrimSpace(p) != p {
		return bad("it has spaces around it")
	}
	if strings.EqualFold(p, "null") {
		return bad(`the "null" origin (sandboxed frames, file: pages) is shared by every such page; allow it with CheckOrigin if you must`)
	}
	var o originPattern
	rest := p
	if scheme, after, ok := strings.Cut(p, "://"); ok {
		if !validScheme(scheme) {
			return bad("the scheme must be letters, digits, +, - or . after a letter, such as http or https")
		}
		o.scheme = strings.ToLower(scheme)
		rest = after
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@") {
		return bad(`an origin is a scheme, a host and a port, with no path, query or user info (such as "https://example.com:8443")`)
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, o.port = rest[:i], rest[i+1:]
		if o.port != "*" {
			n, err := strconv.Atoi(o.port)
			if err != nil || n < 1 || n > 65535 || o.port[0] == '0' {
				return bad(`the port must be a number from 1 to 65535, or "*" for any`)
			}
			if o.port == defaultPort(o.scheme) {
				o.port = ""
			}
		}
	}
	if h, ok := strings.CutPrefix(host, "*."); ok {
		o.subdomain, host = true, h
	}
	if host == "" {
		return bad("it has no host")
	}
	if strings.Contains(host, "*") {
		return bad(`a wildcard may only be a leading "*." (every subdomain) or the port ("localhost:*")`)
	}
	if !validHost(host) {
		return bad("the host must be a name, an IPv4 address or a bracketed IPv6 address")
	}
	o.host = strings.ToLower(host)
	return o, nil
}

// validScheme reports whether s is a URL scheme (RFC 3986 §3.1).
func validScheme(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// validHost reports whether h is a host name, an IPv4 address or a bracketed IPv6 address.
func validHost(h string) bool {
	if strings.HasPrefix(h, "[") {
		return strings.HasSuffix(h, "]") && len(h) > 2 && strings.Trim(h[1:len(h)-1], "0123456789abcdefABCDEF:.") == ""
	}
	for _, c := range []byte(h) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return !strings.HasPrefix(h, ".") && !strings.HasSuffix(h, ".")
}

// defaultPort is the port of a scheme's URLs when they name none ("" for unknown schemes).
func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// matches reports whether an origin, split into a lower-case scheme, host and port (the port
// "" when it is the scheme's default), matches the pattern.
func (o originPattern) matches(scheme, host, port string) bool {
	if o.any {
		return true
	}
	if o.scheme != "" && o.scheme != scheme {
		return false
	}
	if o.port != "*" && o.port != port {
		return false
	}
	if o.subdomain {
		return len(host) > len(o.host)+1 && strings.HasSuffix(host, o.host) && host[len(host)-len(o.host)-1] == '.'
	}
	return host == o.host
}

// splitOrigin splits an Origin header's value into a lower-case scheme, host and port, the port
// "" when it is the scheme's default. ok is false for anything but scheme://host[:port].
func splitOrigin(origin string) (scheme, host, port string, ok bool) {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", "", "", false
	}
	scheme = strings.ToLower(u.Scheme)
	host, port = strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	return scheme, host, port, true
}

// originAllowed applies Options.CheckOrigin, or the rule that a browser's request (one with an
// Origin header) must come from the request's own host or match Options.Origins or
// Options.OriginPatterns. err reports an invalid pattern in Options.Origins.
func originAllowed(r *http.Request, o *Options) (bool, error) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true, nil
	}
	if o.CheckOrigin != nil {
		return o.CheckOrigin(r), nil
	}
	return matchOrigin(origin, r.Host, o.Origins, o.OriginPatterns)
}

// matchOrigin reports whether origin is requestHost's own or matches origins (the syntax of
// Options.Origins) or the deprecated host patterns of Options.OriginPatterns.
func matchOrigin(origin, requestHost string, origins, hostPatterns []string) (bool, error) {
	allowed := false
	for _, p := range origins {
		op, err := parseOriginPattern(p)
		if err != nil {
			return false, err
		}
		if !allowed {
			if scheme, host, port, ok := splitOrigin(origin); ok && op.matches(scheme, host, port) {
				allowed = true
			}
		}
	}
	if allowed {
		return true, nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false, nil
	}
	host := strings.ToLower(u.Host)
	if host == strings.ToLower(requestHost) {
		return true, nil
	}
	for _, pattern := range hostPatterns {
		if ok, _ := path.Match(strings.ToLower(pattern), host); ok {
			return true, nil
		}
	}
	return false, nil
}

// OriginAllowed reports whether Upgrade would let r's origin through with opts (nil means the
// defaults): a request without Origin, one from the request's own host or matching
// opts.Origins or opts.OriginPatterns, or whatever opts.CheckOrigin says when it is set. An
// invalid pattern in opts.Origins lets nothing through (see ValidateOrigins). Other
// transports of the same server use it to apply the same rule.
func OriginAllowed(r *http.Request, opts *Options) bool {
	if opts == nil {
		opts = &Options{}
	}
	ok, err := originAllowed(r, opts)
	return ok && err == nil
}
