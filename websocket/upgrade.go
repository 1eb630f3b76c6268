package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/extensions"
)

// websocketGUID is the key suffix of RFC 6455 §1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// IsWebSocket reports whether r asks to be upgraded to a WebSocket: a GET whose Connection
// header has the "upgrade" token and whose Upgrade header has "websocket". It checks nothing
// else; Upgrade does.
func IsWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

// HTTPError is an HTTP response that refused a handshake. Upgrade returns one after writing it,
// and Options.Verify may return one to choose the response.
type HTTPError struct {
	Status  int         // the status code; zero means 403 Forbidden
	Message string      // the plain-text body
	Header  http.Header // extra response headers, such as WWW-Authenticate
}

// Error names the status and the message.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("websocket: handshake refused with %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// write answers the request with the error.
func (e *HTTPError) write(w http.ResponseWriter) {
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	http.Error(w, e.Message, e.Status)
}

// Upgrade completes the WebSocket handshake for a request, in any net/http handler, and returns
// the connection. It checks the request as RFC 6455 §4.2.1 requires, the origin, and
// Options.Verify; a request that fails gets its HTTP answer (400 for a malformed handshake,
// 426 with Sec-WebSocket-Version: 13 for an unsupported version, 403 for a refused origin,
// Verify's choice) and Upgrade returns an *HTTPError. Headers already set on w's Header are
// sent with the 101 response, with Options.Header.
//
// WebSocket needs HTTP/1.1: net/http does not implement WebSocket over HTTP/2 (RFC 8441),
// so an HTTP/2 request is refused. After Upgrade, w and r's body must no longer be used.
//
// The handler may keep serving the connection, but for servers that hold many connections,
// serve it on a new goroutine and return: while the handler runs, net/http keeps its request
// buffers and state (about 10 KiB per connection) alive, and returning releases them. Handler
// does this for you.
func Upgrade(w http.ResponseWriter, r *http.Request, opts *Options) (*Conn, error) {
	o := opts.withDefaults()
	key, herr := checkHandshake(r)
	if herr == nil {
		if ok, err := originAllowed(r, o); err != nil {
			herr := &HTTPError{Status: http.StatusInternalServerError, Message: "websocket: misconfigured Options.Origins"}
			herr.write(w)
			return nil, fmt.Errorf("websocket: Options.Origins: %w", err)
		} else if !ok {
			herr = &HTTPError{Status: http.StatusForbidden, Message: fmt.Sprintf(
				"websocket: origin %q is not allowed: it is not this server's host %q; list it in websocket.Options.Origins", r.Header.Get("Origin"), r.Host)}
		}
	}
	if herr == nil && o.Verify != nil {
		herr = verifyError(o.Verify(r))
	}
	if herr == nil && o.Registry != nil && o.Registry.isShutdown() {
		herr = &HTTPError{Status: http.StatusServiceUnavailable, Message: "websocket: server is shutting down"}
	}
	if herr != nil {
		herr.write(w)
		return nil, herr
	}

	var negotiated *extensions.Negotiated
	if len(o.Extensions) > 0 {
		offers, err := extensions.Parse(r.Header.Values("Sec-WebSocket-Extensions")...)
		if err != nil {
			herr := &HTTPError{Status: http.StatusBadRequest, Message: "websocket: " + err.Error()}
			herr.write(w)
			return nil, herr
		}
		if negotiated, err = extensions.ServerNegotiate(offers, o.Extensions); err != nil {
			herr := &HTTPError{Status: http.StatusInternalServerError, Message: "websocket: misconfigured extensions"}
			herr.write(w)
			return nil, fmt.Errorf("websocket: Options.Extensions: %w", err)
		}
	}
	protocol := selectProtocol(r, o.Protocols)
	resp := responseHead(w.Header(), o.Header, key, protocol, negotiated)
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		herr := &HTTPError{Status: http.StatusInternalServerError, Message: "websocket: the connection cannot be taken over (is this HTTP/2?)"}
		herr.write(w)
		return nil, fmt.Errorf("websocket: hijack: %w", err)
	}
	// net/http may have left its own deadlines on the connection.
	_ = nc.SetDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Now().Add(o.HandshakeTimeout))
	if _, err := nc.Write(resp); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("websocket: writing the handshake response: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ = brw.Reader.Peek(n)
	}
	c := newConn(nc, pending, false, o)
	c.req = snapshotRequest(r)
	c.protocol = protocol
	c.setExtensions(negotiated)
	if o.Registry != nil && !o.Registry.add(c) {
		// Shut down while this upgrade was under way: the connection would escape Shutdown.
		_ = c.Close(StatusGoingAway, "server shutting down")
		return nil, errors.New("websocket: server is shutting down")
	}
	c.meterOpen()
	return c, nil
}

// checkHandshake checks a request against RFC 6455 §4.2.1 and returns its key.
func checkHandshake(r *http.Request) (string, *HTTPError) {
	bad := func(msg string) (string, *HTTPError) {
		return "", &HTTPError{Status: http.StatusBadRequest, Message: "websocket: " + msg}
	}
	switch {
	case r.ProtoMajor != 1:
		return bad("WebSocket needs HTTP/1.1 (WebSocket over HTTP/2 is not supported)")
	case r.ProtoMinor < 1:
		return bad("WebSocket needs HTTP/1.1")
	case r.Method != http.MethodGet:
		return bad("handshake method must be GET, not " + r.Method)
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return bad("Connection header must contain \"upgrade\"")
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return bad("Upgrade header must contain \"websocket\"")
	}
	switch v := r.Header.Values("Sec-WebSocket-Version"); {
	case len(v) == 0:
		return bad("missing Sec-WebSocket-Version header")
	case len(v) > 1 || strings.TrimSpace(v[0]) != "13":
		return "", &HTTPError{Status: http.StatusUpgradeRequired, Header: http.Header{"Sec-Websocket-Version": {"13"}},
			Message: fmt.Sprintf("websocket: unsupported Sec-WebSocket-Version %q (this server speaks 13)", strings.Join(v, ", "))}
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return bad("the handshake needs exactly one Sec-WebSocket-Key header")
	}
	key := strings.TrimSpace(keys[0])
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return bad("Sec-WebSocket-Key must be 16 bytes in base64")
	}
	return key, nil
}

// verifyError turns what Options.Verify returned into the response that refuses the upgrade.
func verifyError(err error) *HTTPError {
	if err == nil {
		return nil
	}
	var he *HTTPError
	if errors.As(err, &he) {
		c := *he
		if c.Status == 0 {
			c.Status = http.StatusForbidden
		}
		return &c
	}
	return &HTTPError{Status: http.StatusForbidden, Message: err.Error()}
}

// selectProtocol returns the first subprotocol the client offers that the server speaks.
func selectProtocol(r *http.Request, supported []string) string {
	if len(supported) == 0 {
		return ""
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); slices.Contains(supported, p) {
				return p
			}
		}
	}
	return ""
}

// acceptKey computes Sec-WebSocket-Accept for a client's key.
func acceptKey(key string) string { return string(appendAcceptKey(nil, key)) }

// appendAcceptKey appends Sec-WebSocket-Accept for a client's key to b.
func appendAcceptKey(b []byte, key string) []byte {
	h := sha1.New()
	_, _ = h.Write([]byte(key))
	_, _ = h.Write([]byte(websocketGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.AppendEncode(b, h.Sum(sum[:0]))
}

// responseHead builds the 101 response.
func responseHead(h1, h2 http.Header, key, protocol string, exts *extensions.Negotiated) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = appendAcceptKey(b, key)
	b = append(b, "\r\n"...)
	if protocol != "" {
		b = append(append(append(b, "Sec-WebSocket-Protocol: "...), protocol...), "\r\n"...)
	}
	if exts != nil && exts.Header != "" {
		b = append(append(append(b, "Sec-WebSocket-Extensions: "...), exts.Header...), "\r\n"...)
	}
	for _, h := range [2]http.Header{h1, h2} {
		for k, vs := range h {
			switch http.CanonicalHeaderKey(k) {
			case "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Length", "Transfer-Encoding":
				continue
			}
			if !validHeaderName(k) {
				continue
			}
			for _, v := range vs {
				b = append(append(b, k...), ": "...)
				for i := 0; i < len(v); i++ { // no CR, LF or NUL may split the response
					if c := v[i]; c == '\r' || c == '\n' || c == 0 {
						b = append(b, ' ')
					} else {
						b = append(b, c)
					}
				}
				b = append(b, "\r\n"...)
			}
		}
	}
	return append(b, "\r\n"...)
}

// validHeaderName reports whether k is a token, as header names must be.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// headerHasToken reports whether a comma-separated header has token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
