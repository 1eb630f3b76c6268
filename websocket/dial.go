package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-go/herald/extensions"
	"github.com/herald-go/herald/extensions/deflate"
)

// DialOptions configures Dial. A nil *DialOptions is valid and means all defaults. DialOptions
// may be shared by many dials and must not be changed while in use.
type DialOptions struct {
	// Protocols lists the subprotocols offered, in order of preference, in
	// Sec-WebSocket-Protocol. The server's choice is checked: a subprotocol that was not
	// offered fails the handshake. A server that selects none is accepted, as RFC 6455 §4.1
	// allows (browsers refuse it), and Conn.Protocol then returns "": check it when the
	// application cannot do without one. Nil offers none.
	Protocols []string

	// Header holds extra request headers for the handshake, such as Origin, Authorization or
	// Cookie. A "Host" entry replaces the URL's host in the Host header. The headers Dial
	// writes itself (Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version,
	// Sec-WebSocket-Protocol, Sec-WebSocket-Extensions) may not appear here. Credentials in
	// the URL (ws://user:pass@host/) become a Basic Authorization header unless Header has one.
	Header http.Header

	// Extensions are the extensions offered, in order of preference (package extensions).
	// The server's answer is checked against the offers: an extension that was not offered,
	// or parameters its offer did not allow, fail the handshake. Nil means permessage-deflate
	// with its defaults (deflate.New(deflate.Options{})); an empty, non-nil slice offers none.
	Extensions []Extension

	// TLSConfig configures TLS for wss:// URLs: roots (RootCAs), client certificates
	// (Certificates, GetClientCertificate) and the server name, which defaults to the URL's
	// host. ALPN is always "http/1.1": WebSocket over HTTP/2 is not supported. Nil means the
	// zero tls.Config: the system roots, no client certificate.
	TLSConfig *tls.Config

	// DialContext opens the network connection: to the server, or to the proxy when there is
	// one. network is "tcp" and addr is "host:port". Nil means a net.Dialer's DialContext.
	// Bring your own network here (an in-memory pipe, a VPN, a different resolver); the
	// connection it returns must unblock its Read and Write when closed.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the proxy to use for a handshake, as in http.Transport: a URL with
	// scheme http (CONNECT), https (CONNECT over TLS to the proxy), socks5 or socks5h (the
	// proxy resolves the host name in both), or nil for a direct connection. Credentials in
	// the proxy URL are sent as Basic Proxy-Authorization (HTTP) or as the SOCKS5
	// username/password. Proxy is called with the handshake request, whose URL has scheme
	// http or https (ws and wss mapped), so net/http's proxy functions work unchanged.
	//
	// Nil means ProxyFromEnvironment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY). Use
	// NoProxy to connect directly whatever the environment says, ProxyURL for a fixed proxy.
	Proxy func(*http.Request) (*url.URL, error)

	// ProxyConnectHeader holds extra headers for the CONNECT request to an HTTP or HTTPS
	// proxy. A Proxy-Authorization entry here replaces the one built from the proxy URL.
	ProxyConnectHeader http.Header

	// ProxyTLS configures TLS to an https:// proxy (its roots, a client certificate),
	// separately from TLSConfig, which is for the server behind it. The server name defaults
	// to the proxy's host. Nil means the zero tls.Config.
	ProxyTLS *tls.Config

	// MaxLength is the largest message, in bytes, that Read accepts, once inflated when it
	// came compressed. Zero means 1<<26 - 1 (64 MiB - 1). See Options.MaxLength.
	MaxLength int64

	// PingInterval is how often the connection pings the server; zero means 30 seconds, a
	// negative value turns automatic pings off. See Options.PingInterval.
	PingInterval time.Duration

	// PongTimeout is how long an automatic ping may wait for its pong. Zero means 20 seconds.
	PongTimeout time.Duration

	// CloseTimeout bounds the closing handshake. Zero means 5 seconds.
	CloseTimeout time.Duration

	// HandshakeTimeout bounds the whole opening handshake: connecting, the proxy, TLS, the
	// upgrade request and its response. The context given to Dial bounds it too; the earlier
	// wins. Zero means 30 seconds.
	HandshakeTimeout time.Duration

	// WriteQueueLimit bounds the bytes of data messages waiting to be written. Zero means
	// 16 MiB. See Options.WriteQueueLimit.
	WriteQueueLimit int64
}

const (
	defaultDialHandshakeTimeout = 30 * time.Second
	// maxResponseHeader bounds the HTTP response head Dial reads, from the server or a proxy.
	maxResponseHeader = 256 << 10
	// maxErrorBody bounds the body of a refusal kept in the error's Response.
	maxErrorBody = 64 << 10
	// errorBodyWait bounds the wait for a refusal's body.
	errorBodyWait = time.Second
)

// dialOptions is DialOptions with defaults filled in, and the Options of the connection.
type dialOptions struct {
	DialOptions
	conn *Options
}

func (o *DialOptions) withDefaults() *dialOptions {
	var d dialOptions
	if o != nil {
		d.DialOptions = *o
	}
	if d.HandshakeTimeout <= 0 {
		d.HandshakeTimeout = defaultDialHandshakeTimeout
	}
	if d.DialContext == nil {
		d.DialContext = (&net.Dialer{}).DialContext
	}
	if d.Proxy == nil {
		d.Proxy = ProxyFromEnvironment
	}
	if d.Extensions == nil {
		d.Extensions = []Extension{deflate.New(deflate.Options{})}
	}
	d.conn = (&Options{
		MaxLength:        d.MaxLength,
		PingInterval:     d.PingInterval,
		PongTimeout:      d.PongTimeout,
		CloseTimeout:     d.CloseTimeout,
		HandshakeTimeout: d.HandshakeTimeout,
		WriteQueueLimit:  d.WriteQueueLimit,
		// A server may legitimately stay silent: a client never times out its first frame.
		FirstFrameTimeout: -1,
	}).withDefaults()
	return &d
}

// HandshakeError is returned by Dial when the server answered the opening handshake but did
// not complete it: a status other than 101 (Reason is empty), or a 101 response that breaks
// RFC 6455 §4.1 (Reason says how). Response is the server's response, also returned by Dial;
// for a refusal, its Body holds up to the first 64 KiB of what the server sent and can be
// read after Dial returned.
type HandshakeError struct {
	URL      string         // the URL dialled, without its password
	Response *http.Response // the server's response, never nil
	Reason   string         // why a 101 response is invalid; empty for a refusal
}

// Error names the URL and the status, or why the handshake was invalid.
func (e *HandshakeError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("websocket: handshake with %s failed: %s", e.URL, e.Reason)
	}
	return fmt.Sprintf("websocket: handshake with %s refused: %s", e.URL, e.Response.Status)
}

// Dial opens a WebSocket connection to a ws:// or wss:// URL (http:// and https:// are taken
// as their WebSocket equivalents), directly or through a proxy (see DialOptions.Proxy), and
// returns the connection with the server's handshake response. The response's Body is empty
// (http.NoBody) on success; the connection owns the network.
//
// When the server refuses the handshake, or answers with an invalid one, Dial returns the
// response (non-nil) and a *HandshakeError. A proxy that refuses the tunnel gives a
// *ProxyError, which carries the proxy's own response, and a nil response. Other failures
// (the network, TLS, ctx) return a nil response.
//
// ctx bounds the whole opening handshake, with DialOptions.HandshakeTimeout; once Dial has
// returned, cancelling ctx has no effect on the connection. The returned Conn is the same
// type the server side uses: its frames are masked, and it refuses masked frames from the
// server.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	o := opts.withDefaults()
	req, key, err := newHandshakeRequest(rawURL, o)
	if err != nil {
		return nil, nil, err
	}
	shown := redactURL(req.URL, wsScheme(req.URL.Scheme))
	fail := func(err error) (*Conn, *http.Response, error) {
		return nil, nil, fmt.Errorf("websocket: dial %s: %w", shown, err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()

	proxyURL, err := o.Proxy(req)
	if err != nil {
		return fail(fmt.Errorf("choosing a proxy: %w", err))
	}
	addr := hostPort(req.URL)
	var (
		raw net.Conn // the connection to the server or the proxy, closed if ctx ends first
		nc  net.Conn // the connection the handshake goes over
	)
	if proxyURL == nil {
		raw, err = o.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fail(err)
		}
	} else {
		if raw, err = dialProxy(ctx, o, proxyURL, addr); err != nil {
			return nil, nil, err
		}
	}
	// From here on, ctx ending closes the connection, which unblocks whatever is in progress.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	closeAll := func() {
		stop()
		_ = raw.Close()
	}
	nc = raw
	if proxyURL != nil {
		if nc, err = tunnel(ctx, o, raw, proxyURL, addr); err != nil {
			closeAll()
			if ctx.Err() != nil {
				return fail(fmt.Errorf("through proxy %s: %w", redactURL(proxyURL, ""), ctx.Err()))
			}
			return nil, nil, err
		}
	}
	if req.URL.Scheme == "https" {
		tc := tls.Client(nc, clientTLSConfig(o.TLSConfig, req.URL.Hostname()))
		if err := tc.HandshakeContext(ctx); err != nil {
			closeAll()
			return fail(ctxOr(ctx, fmt.Errorf("TLS handshake: %w", err)))
		}
		nc = tc
	}

	if err := writeHandshakeRequest(nc, req); err != nil {
		closeAll()
		return fail(ctxOr(ctx, fmt.Errorf("writing the handshake request: %w", err)))
	}
	lim := &headerLimit{r: nc, n: maxResponseHeader}
	br := bufio.NewReaderSize(lim, 4096)
	hs, resp, err := readHandshakeResponse(br, req, key, o.Protocols, o.Extensions)
	if err != nil {
		if resp != nil {
			if hs == nil { // a refusal: keep the start of its body for the caller
				keepErrorBody(raw, lim, resp)
			} else {
				resp.Body = http.NoBody
			}
			closeAll()
			return nil, resp, &HandshakeError{URL: shown, Response: resp, Reason: errReason(hs, err)}
		}
		closeAll()
		return fail(ctxOr(ctx, err))
	}
	if !stop() {
		// ctx ended as the handshake completed: the connection is (being) closed.
		_ = raw.Close()
		return fail(ctx.Err())
	}

	// Bytes the server sent right after its 101 are the first frames: hand them over.
	var pending []byte
	if n := br.Buffered(); n > 0 {
		pending, _ = br.Peek(n)
	}
	if pc, ok := nc.(*prefixConn); ok {
		// The proxy's reader held bytes past its 200 that the handshake did not consume.
		pending = append(bytes.Clone(pending), pc.buf...)
		nc = pc.Conn
	}
	_ = nc.SetDeadline(time.Time{})
	c := newConn(nc, pending, true, o.conn)
	c.req = snapshotRequest(req)
	c.protocol = hs.protocol
	c.setExtensions(hs.extensions)
	return c, resp, nil
}

// How the handshake is done: by hand, with net/http's parser. gobwas/ws's Dialer would do the
// request and the checks, but it does not hand back the response (status line and headers,
// also of a refusal) that Dial promises, it would need our proxy code behind its NetDial
// anyway, and its TLS step would hide the bytes buffered past the proxy's 200. Writing the
// request is a few lines; http.ReadResponse reads the response head with net/http's
// well-tested parser, bounded by headerLimit, and leaves the bytes that follow the 101 in
// the bufio.Reader, where Dial collects them for the connection.

// handshake is what a valid 101 response settled.
type handshake struct {
	protocol   string
	extensions *extensions.Negotiated
}

// newHandshakeRequest checks the URL and options and builds the opening handshake request
// (RFC 6455 §4.1) and its key.
func newHandshakeRequest(rawURL string, o *dialOptions) (*http.Request, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("websocket: dial: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return nil, "", fmt.Errorf("websocket: dial %s: the URL's scheme must be ws or wss", rawURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, "", fmt.Errorf("websocket: dial %s: the URL has no host", rawURL)
	}
	if u.Fragment != "" || strings.Contains(rawURL, "#") {
		return nil, "", fmt.Errorf("websocket: dial %s: a WebSocket URL may not have a fragment (RFC 6455 §3)", rawURL)
	}
	u.Fragment, u.RawFragment = "", ""
	for _, p := range o.Protocols {
		if !isToken(p) {
			return nil, "", fmt.Errorf("websocket: dial: subprotocol %q is not an HTTP token", p)
		}
	}

	var keyBytes [16]byte
	_, _ = rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])

	h := make(http.Header, len(o.Header)+6)
	host := u.Host
	for k, vs := range o.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions":
			return nil, "", fmt.Errorf("websocket: dial: DialOptions.Header may not set %s (Dial writes it; use Protocols for subprotocols)", k)
		case "Host":
			if len(vs) > 0 && vs[0] != "" {
				host = vs[0]
			}
			continue
		}
		h[http.CanonicalHeaderKey(k)] = append(h[http.CanonicalHeaderKey(k)], vs...)
	}
	if u.User != nil {
		if h.Get("Authorization") == "" {
			pass, _ := u.User.Password()
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
		}
		u.User = nil
	}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	if len(o.Protocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(o.Protocols, ", "))
	}
	// Extensions: each offers itself, with its parameters; readHandshakeResponse hands the
	// server's answer back to them.
	if len(o.Extensions) > 0 {
		offer, err := extensions.ClientOffer(o.Extensions)
		if err != nil {
			return nil, "", fmt.Errorf("websocket: dial: DialOptions.Extensions: %w", err)
		}
		h.Set("Sec-WebSocket-Extensions", offer)
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       host,
	}
	return req, key, nil
}

// writeHandshakeRequest writes the request head in one write.
func writeHandshakeRequest(w io.Writer, req *http.Request) error {
	var b bytes.Buffer
	b.WriteString("GET " + req.URL.RequestURI() + " HTTP/1.1\r\nHost: " + sanitizeHeaderValue(req.Host) + "\r\n")
	_ = req.Header.Write(&b) // sorted; drops invalid names, replaces newlines in values
	b.WriteString("\r\n")
	_, err := w.Write(b.Bytes())
	return err
}

// readHandshakeResponse reads the server's answer to req and checks it as RFC 6455 §4.1
// requires. It returns a nil handshake with the response for a status other than 101, a
// non-nil handshake with the response and an error for an invalid 101, and no response when
// none could be read.
func readHandshakeResponse(br *bufio.Reader, req *http.Request, key string, protocols []string, exts []Extension) (*handshake, *http.Response, error) {
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp, errors.New(resp.Status)
	}
	hs := &handshake{}
	resp.Body = http.NoBody
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return hs, resp, fmt.Errorf("the response's Upgrade header is %q, not websocket", resp.Header.Get("Upgrade"))
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return hs, resp, fmt.Errorf("the response's Connection header is %q, without upgrade", resp.Header.Get("Connection"))
	}
	if accept := resp.Header.Values("Sec-WebSocket-Accept"); len(accept) != 1 || strings.TrimSpace(accept[0]) != acceptKey(key) {
		return hs, resp, fmt.Errorf("Sec-WebSocket-Accept %q does not match the key", strings.Join(accept, ", "))
	}
	switch ps := resp.Header.Values("Sec-WebSocket-Protocol"); {
	case len(ps) > 1:
		return hs, resp, fmt.Errorf("the server selected several subprotocols: %q", strings.Join(ps, ", "))
	case len(ps) == 1:
		p := strings.TrimSpace(ps[0])
		offered := false
		for _, q := range protocols {
			offered = offered || q == p
		}
		if !offered {
			return hs, resp, fmt.Errorf("the server selected subprotocol %q, which was not offered (offered: %q)", p, protocols)
		}
		hs.protocol = p
	}
	if accepted := resp.Header.Values("Sec-WebSocket-Extensions"); len(accepted) > 0 {
		n, err := extensions.ClientActivate(accepted, exts)
		if err != nil {
			return hs, resp, fmt.Errorf("Sec-WebSocket-Extensions %q: %w", strings.Join(accepted, ", "), err)
		}
		hs.extensions = n
	}
	return hs, resp, nil
}

// keepErrorBody replaces a refusal's Body with up to its first maxErrorBody bytes, waiting
// for them at most errorBodyWait.
func keepErrorBody(raw net.Conn, lim *headerLimit, resp *http.Response) {
	lim.n += maxErrorBody
	_ = raw.SetReadDeadline(time.Now().Add(errorBodyWait))
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	resp.Header.Del("Transfer-Encoding")
}

func errReason(hs *handshake, err error) string {
	if hs == nil {
		return ""
	}
	return err.Error()
}

// headerLimit reads at most n bytes from r, then fails with errHeaderTooLong: it bounds what
// reading a response head can take in.
type headerLimit struct {
	r io.Reader
	n int
}

var errHeaderTooLong = fmt.Errorf("response head longer than %d KiB", maxResponseHeader>>10)

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLong
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

// clientTLSConfig returns a copy of c for a connection to serverName, speaking HTTP/1.1.
func clientTLSConfig(c *tls.Config, serverName string) *tls.Config {
	if c == nil {
		c = &tls.Config{}
	}
	c = c.Clone()
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	c.NextProtos = []string{"http/1.1"}
	return c
}

// hostPort returns u's host and port, the port defaulting to the scheme's.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https", "wss":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// wsScheme maps http and https back to ws and wss, for messages.
func wsScheme(s string) string {
	switch s {
	case "http":
		return "ws"
	case "https":
		return "wss"
	}
	return s
}

// redactURL returns u as text with scheme (unless empty), and without password.
func redactURL(u *url.URL, scheme string) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	if scheme != "" {
		c.Scheme = scheme
	}
	return c.String()
}

// ctxOr returns ctx's error when ctx has ended, else err: once ctx has ended, the closed
// connection behind err is the consequence, not the cause.
func ctxOr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// sanitizeHeaderValue replaces the characters that would break a header line.
func sanitizeHeaderValue(v string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
}
