package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ProxyURL returns a DialOptions.Proxy function that sends every handshake through the proxy
// at rawURL: "http://user:pass@proxy:3128", "https://proxy:443", "socks5://proxy:1080". A
// URL without a scheme is taken as http://. A URL that does not parse, or names another
// scheme, makes Dial fail with the reason.
func ProxyURL(rawURL string) func(*http.Request) (*url.URL, error) {
	u, err := parseProxyURL(rawURL)
	return func(*http.Request) (*url.URL, error) { return u, err }
}

// NoProxy is a DialOptions.Proxy function that always connects directly, whatever the
// environment says.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }

// ProxyFromEnvironment is the default DialOptions.Proxy: it reads the proxy settings from
// the environment at each call, as ReadProxyEnvironment(os.Getenv) does, and picks the proxy
// for the request as ProxyEnvironment.Proxy does.
func ProxyFromEnvironment(req *http.Request) (*url.URL, error) {
	return ReadProxyEnvironment(os.Getenv).Proxy(req)
}

// ProxyEnvironment holds proxy settings in the form of the environment variables that curl,
// net/http and most tools read. Its Proxy method is a DialOptions.Proxy function; build one
// by hand to inject settings (tests do), or read them with ReadProxyEnvironment.
//
// It differs from net/http's ProxyFromEnvironment in three ways: ws:// URLs use HTTPProxy and
// wss:// URLs HTTPSProxy (net/http knows neither scheme, and would not proxy them); AllProxy
// is the fallback for both; and loopback addresses and localhost are proxied like any other
// host unless NoProxy names them, as curl does (net/http always connects to them directly).
type ProxyEnvironment struct {
	HTTPProxy  string // the proxy for ws:// (HTTP_PROXY)
	HTTPSProxy string // the proxy for wss:// (HTTPS_PROXY)
	AllProxy   string // the proxy for either when the one above is empty (ALL_PROXY)

	// NoProxy lists the hosts reached directly, separated by commas or spaces: host names
	// (which also cover their subdomains; a leading "." or "*." changes nothing), IP
	// addresses, CIDR ranges (10.0.0.0/8), each optionally with ":port", or "*" for all.
	NoProxy string
}

// ReadProxyEnvironment reads HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (each in upper
// or lower case, upper first) through getenv. In a CGI program (REQUEST_METHOD set) the
// upper-case HTTP_PROXY is ignored, since a request's "Proxy:" header reaches it under that
// name (httpoxy).
func ReadProxyEnvironment(getenv func(string) string) ProxyEnvironment {
	get := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	e := ProxyEnvironment{
		HTTPProxy:  get("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: get("HTTPS_PROXY", "https_proxy"),
		AllProxy:   get("ALL_PROXY", "all_proxy"),
		NoProxy:    get("NO_PROXY", "no_proxy"),
	}
	if getenv("REQUEST_METHOD") != "" {
		e.HTTPProxy = getenv("http_proxy")
	}
	return e
}

// Proxy returns the proxy for req: by its URL's scheme (http and ws use HTTPProxy, https and
// wss HTTPSProxy, either falling back to AllProxy), or nil when none is set or NoProxy
// names the host. It is a DialOptions.Proxy function.
func (e ProxyEnvironment) Proxy(req *http.Request) (*url.URL, error) {
	var raw string
	switch strings.ToLower(req.URL.Scheme) {
	case "https", "wss":
		raw = e.HTTPSProxy
	case "http", "ws":
		raw = e.HTTPProxy
	default:
		return nil, nil
	}
	if raw == "" {
		raw = e.AllProxy
	}
	if raw == "" || noProxyMatches(e.NoProxy, req.URL) {
		return nil, nil
	}
	return parseProxyURL(raw)
}

// noProxyMatches reports whether the NO_PROXY list names u's host.
func noProxyMatches(list string, u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	_, port, _ := net.SplitHostPort(hostPort(u))
	hostIP, ipErr := netip.ParseAddr(host)
	for _, entry := range strings.FieldsFunc(strings.ToLower(list), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if entry == "*" {
			return true
		}
		if strings.Contains(entry, "/") {
			if p, err := netip.ParsePrefix(entry); err == nil && ipErr == nil && p.Contains(hostIP.Unmap()) {
				return true
			}
			continue
		}
		name, wantPort := entry, ""
		if _, err := netip.ParseAddr(strings.Trim(entry, "[]")); err == nil {
			name = strings.Trim(entry, "[]")
		} else if h, p, err := net.SplitHostPort(entry); err == nil {
			name, wantPort = strings.Trim(h, "[]"), p
		}
		if wantPort != "" && wantPort != port {
			continue
		}
		if ip, err := netip.ParseAddr(name); err == nil {
			if ipErr == nil && ip.Unmap() == hostIP.Unmap() {
				return true
			}
			continue
		}
		name = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(name, "*"), "."), ".")
		if name != "" && (host == name || strings.HasSuffix(host, "."+name)) {
			return true
		}
	}
	return false
}

// parseProxyURL parses a proxy URL, taking one without a scheme as http://.
func parseProxyURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("websocket: invalid proxy URL: %w", err)
	}
	switch u.Scheme = strings.ToLower(u.Scheme); u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("websocket: proxy URL %s: unsupported scheme %q (http, https, socks5 or socks5h)", redactURL(u, ""), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("websocket: proxy URL %s has no host", redactURL(u, ""))
	}
	return u, nil
}

// ProxyError is returned by Dial when the proxy could not be used: it could not be reached,
// TLS to it failed, or it refused the tunnel. Response is an HTTP or HTTPS proxy's answer to
// CONNECT when that was not 2xx (407 Proxy Authentication Required for missing or wrong
// credentials, 403, 502 ...): its Body holds up to the first 64 KiB of what the proxy sent.
// For a SOCKS5 proxy, Response is nil and Err says what the proxy answered.
type ProxyError struct {
	Proxy    string         // the proxy URL, without its password
	Target   string         // the host:port the tunnel was for
	Response *http.Response // the proxy's answer to CONNECT when it was not 2xx, else nil
	Err      error          // the failure otherwise: the network, TLS, SOCKS5
}

// Error names the proxy and the target, and says what failed and, where it can, what to do.
func (e *ProxyError) Error() string {
	if e.Response != nil {
		hint := ""
		if e.Response.StatusCode == http.StatusProxyAuthRequired {
			hint = " (check the credentials in the proxy URL, or DialOptions.ProxyConnectHeader)"
		}
		return fmt.Sprintf("websocket: proxy %s refused CONNECT %s: %s%s", e.Proxy, e.Target, e.Response.Status, hint)
	}
	return fmt.Sprintf("websocket: proxy %s, tunnel to %s: %v", e.Proxy, e.Target, e.Err)
}

// Unwrap returns the cause, when it was no HTTP response.
func (e *ProxyError) Unwrap() error { return e.Err }

// dialProxy connects to the proxy.
func dialProxy(ctx context.Context, o *dialOptions, pu *url.URL, target string) (net.Conn, error) {
	conn, err := o.DialContext(ctx, "tcp", hostPort(pu))
	if err != nil {
		return nil, &ProxyError{Proxy: redactURL(pu, ""), Target: target,
			Err: fmt.Errorf("cannot reach the proxy: %w", err)}
	}
	return conn, nil
}

// tunnel opens a tunnel to addr through the proxy at pu over conn, a connection to the proxy.
// It returns the connection to use from there on: the tunnel's bytes, starting with any the
// proxy had already relayed.
func tunnel(ctx context.Context, o *dialOptions, conn net.Conn, pu *url.URL, addr string) (net.Conn, error) {
	perr := func(err error) error {
		return &ProxyError{Proxy: redactURL(pu, ""), Target: addr, Err: err}
	}
	switch pu.Scheme {
	case "socks5", "socks5h":
		if err := socks5Connect(conn, pu, addr); err != nil {
			return nil, perr(err)
		}
		return conn, nil
	case "https":
		tc := tls.Client(conn, clientTLSConfig(o.ProxyTLS, pu.Hostname()))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, perr(fmt.Errorf("TLS handshake with the proxy: %w", err))
		}
		conn = tc
	}
	connectReq := newConnectRequest(pu, addr, o.ProxyConnectHeader)
	if err := writeConnectRequest(conn, connectReq); err != nil {
		return nil, perr(fmt.Errorf("writing CONNECT: %w", err))
	}
	lim := &headerLimit{r: conn, n: maxResponseHeader}
	br := bufio.NewReaderSize(lim, 4096)
	resp, pending, err := readConnectResponse(br, connectReq)
	if err != nil {
		if resp != nil {
			keepErrorBody(conn, lim, resp)
			return nil, &ProxyError{Proxy: redactURL(pu, ""), Target: addr, Response: resp}
		}
		return nil, perr(fmt.Errorf("its answer to CONNECT is not HTTP (is it an HTTP proxy?): %w", err))
	}
	if len(pending) > 0 {
		return &prefixConn{Conn: conn, buf: pending}, nil
	}
	return conn, nil
}

// newConnectRequest builds the CONNECT request for addr.
func newConnectRequest(pu *url.URL, addr string, extra http.Header) *http.Request {
	h := make(http.Header, len(extra)+1)
	for k, vs := range extra {
		if http.CanonicalHeaderKey(k) == "Host" {
			continue
		}
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if pu.User != nil && h.Get("Proxy-Authorization") == "" {
		pass, _ := pu.User.Password()
		h.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pass)))
	}
	return &http.Request{
		Method:     http.MethodConnect,
		URL:        &url.URL{Opaque: addr},
		Host:       addr,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
	}
}

func writeConnectRequest(w io.Writer, req *http.Request) error {
	var b bytes.Buffer
	b.WriteString("CONNECT " + req.Host + " HTTP/1.1\r\nHost: " + req.Host + "\r\n")
	_ = req.Header.Write(&b)
	b.WriteString("\r\n")
	_, err := w.Write(b.Bytes())
	return err
}

// readConnectResponse reads the proxy's answer to CONNECT. Any 2xx opens the tunnel (RFC 9110
// §9.3.6), whatever its headers say (a "Connection: close" included: the tunnel is the
// connection now), and the bytes read past its head are the tunnel's first, returned as
// pending. Another status returns the response and an error.
func readConnectResponse(br *bufio.Reader, req *http.Request) (*http.Response, []byte, error) {
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the proxy's response to CONNECT: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, nil, errors.New(resp.Status)
	}
	var pending []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		pending = bytes.Clone(b)
	}
	return resp, pending, nil
}

// prefixConn is a connection whose first bytes were already read: Read returns buf first.
type prefixConn struct {
	net.Conn
	buf []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// SOCKS5 (RFC 1928), with username/password authentication (RFC 1929).
const (
	socks5Version        = 5
	socks5NoAuth         = 0
	socks5UserPass       = 2
	socks5NoAcceptable   = 0xff
	socks5CmdConnect     = 1
	socks5AddrIPv4       = 1
	socks5AddrDomain     = 3
	socks5AddrIPv6       = 4
	socks5UserPassVer    = 1
	socks5ReplySucceeded = 0
)

var socks5Replies = [...]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// ErrSOCKS5Auth is the cause of a *ProxyError when a SOCKS5 proxy refused the credentials
// given in the proxy URL, or wanted credentials and none were given.
var ErrSOCKS5Auth = errors.New("websocket: SOCKS5 proxy refused the credentials (username and password in the proxy URL)")

// socks5Connect asks the SOCKS5 proxy on conn for a connection to addr. It reads exactly the
// proxy's replies, so that nothing of the tunnel is read ahead.
func socks5Connect(conn net.Conn, pu *url.URL, addr string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("invalid port %q", portStr)
	}
	var user, pass string
	if pu.User != nil {
		user = pu.User.Username()
		pass, _ = pu.User.Password()
		if len(user) == 0 || len(user) > 255 || len(pass) > 255 {
			return errors.New("SOCKS5 username must be 1 to 255 bytes and password at most 255")
		}
	}

	// Greeting: the methods we can do.
	greeting := []byte{socks5Version, 1, socks5NoAuth}
	if pu.User != nil {
		greeting = []byte{socks5Version, 2, socks5NoAuth, socks5UserPass}
	}
	if _, err := conn.Write(greeting); err != nil {
		return err
	}
	var b [2]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("reading the SOCKS5 method: %w", err)
	}
	if b[0] != socks5Version {
		return fmt.Errorf("not a SOCKS5 proxy (version %d in its reply)", b[0])
	}
	switch b[1] {
	case socks5NoAuth:
	case socks5UserPass:
		if pu.User == nil {
			return fmt.Errorf("%w: the proxy wants a username and password", ErrSOCKS5Auth)
		}
		msg := append([]byte{socks5UserPassVer, byte(len(user))}, user...)
		msg = append(append(msg, byte(len(pass))), pass...)
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return fmt.Errorf("reading the SOCKS5 authentication status: %w", err)
		}
		if b[1] != 0 {
			return ErrSOCKS5Auth
		}
	case socks5NoAcceptable:
		if pu.User == nil {
			return fmt.Errorf("%w: the proxy accepts none of the offered methods (does it want credentials?)", ErrSOCKS5Auth)
		}
		return fmt.Errorf("%w: the proxy accepts none of the offered methods", ErrSOCKS5Auth)
	default:
		return fmt.Errorf("the SOCKS5 proxy chose method %d, which was not offered", b[1])
	}

	// The request: CONNECT to the address, by IP or by name (the proxy resolves it).
	req := []byte{socks5Version, socks5CmdConnect, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() || ip.Is4In6() {
			a := ip.Unmap().As4()
			req = append(append(req, socks5AddrIPv4), a[:]...)
		} else {
			a := ip.As16()
			req = append(append(req, socks5AddrIPv6), a[:]...)
		}
	} else {
		if len(host) > 255 {
			return fmt.Errorf("host name %q too long for SOCKS5", host)
		}
		req = append(append(req, socks5AddrDomain, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := conn.Write(req); err != nil {
		return err
	}
	return readSOCKS5Reply(conn)
}

// readSOCKS5Reply reads the reply to CONNECT, exactly its length.
func readSOCKS5Reply(r io.Reader) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("reading the SOCKS5 reply: %w", err)
	}
	if h[0] != socks5Version {
		return fmt.Errorf("SOCKS5 reply with version %d", h[0])
	}
	if h[1] != socks5ReplySucceeded {
		msg := "unknown error"
		if int(h[1]) < len(socks5Replies) && socks5Replies[h[1]] != "" {
			msg = socks5Replies[h[1]]
		}
		return fmt.Errorf("SOCKS5 proxy refused the connection: %s (reply %d)", msg, h[1])
	}
	var n int
	switch h[3] {
	case socks5AddrIPv4:
		n = 4
	case socks5AddrIPv6:
		n = 16
	case socks5AddrDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return fmt.Errorf("reading the SOCKS5 reply: %w", err)
		}
		n = int(l[0])
	default:
		return fmt.Errorf("SOCKS5 reply with address type %d", h[3])
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(r, rest); err != nil {
		return fmt.Errorf("reading the SOCKS5 reply: %w", err)
	}
	return nil
}
