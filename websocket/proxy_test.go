package websocket_test

// Tests of Dial through proxies: real ones started from internal/testpeers/proxy-server.js (the
// `proxy` package as HTTP and HTTPS CONNECT proxy with Basic credentials, a refusing proxy,
// @pondwader/socks5-server), hand-written ones for the edge cases a real proxy cannot be made
// to show, and the environment settings.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// connectSeen is what proxy-server.js prints for each CONNECT it receives.
type connectSeen struct {
	Connect string
	Headers map[string]string
	Socks   string
}

// dialErr dials and returns the error, which must not be nil, and the response.
func dialErr(t *testing.T, url string, o *websocket.DialOptions) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, o)
	if err == nil {
		_ = c.Close(websocket.StatusNormalClosure, "")
		t.Fatalf("Dial %s succeeded, want an error", url)
	}
	return resp, err
}

// proxyRefusal returns the *ProxyError in err with the proxy's response.
func proxyRefusal(t *testing.T, err error, status int) *websocket.ProxyError {
	t.Helper()
	var pe *websocket.ProxyError
	require.ErrorAs(t, err, &pe)
	require.NotNil(t, pe.Response, "the proxy's response: %v", err)
	assert.Equal(t, status, pe.Response.StatusCode, "%v", err)
	return pe
}

func TestPeerProxyHTTP(t *testing.T) {
	t.Parallel()
	p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "http", "--auth", "alice:s3cr:et")
	target := serve(t, &websocket.Options{Protocols: []string{"irc"}}, echo)
	targetHost := strings.TrimPrefix(target, "ws://")

	t.Run("credentials and CONNECT headers", func(t *testing.T) {
		c, resp := mustDial(t, target+"/through", &websocket.DialOptions{
			Proxy:              websocket.ProxyURL("http://alice:s3cr%3Aet@" + proxyAddr),
			ProxyConnectHeader: http.Header{"X-Proxy-Token": {"t0k"}},
			Protocols:          []string{"irc"},
		})
		assert.Equal(t, 101, resp.StatusCode)
		assert.Equal(t, "irc", c.Protocol())
		roundTrip(t, c, websocket.MessageText, []byte("through the proxy"))
		roundTrip(t, c, websocket.MessageBinary, make([]byte, 1<<20))
		closeNormally(t, c)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
		assert.Equal(t, targetHost, seen.Connect)
		assert.Equal(t, targetHost, seen.Headers["host"])
		assert.Equal(t, "t0k", seen.Headers["x-proxy-token"])
		assert.Equal(t, "Basic YWxpY2U6czNjcjpldA==", seen.Headers["proxy-authorization"])
	})

	t.Run("missing credentials", func(t *testing.T) {
		resp, err := dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("http://" + proxyAddr)})
		assert.Nil(t, resp, "the handshake response is the server's; the proxy's is in the error")
		pe := proxyRefusal(t, err, http.StatusProxyAuthRequired)
		assert.Equal(t, `Basic realm="proxy"`, pe.Response.Header.Get("Proxy-Authenticate"))
		body, _ := io.ReadAll(pe.Response.Body)
		assert.Equal(t, "Proxy authorization required", string(body))
		assert.Contains(t, err.Error(), "407")
		assert.Contains(t, err.Error(), "credentials")
		assert.Equal(t, targetHost, pe.Target)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
		assert.Empty(t, seen.Headers["proxy-authorization"])
	})

	t.Run("wrong credentials", func(t *testing.T) {
		_, err := dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("http://alice:wrong@" + proxyAddr)})
		pe := proxyRefusal(t, err, http.StatusProxyAuthRequired)
		assert.Equal(t, "http://alice@"+proxyAddr, pe.Proxy+"", "no password in the error")
		assert.NotContains(t, err.Error(), "wrong")
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
	})

	t.Run("Proxy-Authorization header replaces the URL's", func(t *testing.T) {
		c, _ := mustDial(t, target, &websocket.DialOptions{
			Proxy:              websocket.ProxyURL("http://alice:wrong@" + proxyAddr),
			ProxyConnectHeader: http.Header{"Proxy-Authorization": {"Basic YWxpY2U6czNjcjpldA=="}},
		})
		closeNormally(t, c)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
	})

	t.Run("wss through the proxy to ws's server", func(t *testing.T) {
		cert := testpeers.NewCert(t)
		_, wssAddr := testpeers.Listen(t, "ws-server-dial.js", "--tls", cert.CertFile, cert.KeyFile)
		c, _ := mustDial(t, "wss://"+wssAddr+"/hello", &websocket.DialOptions{
			Proxy:     websocket.ProxyURL("http://alice:s3cr%3Aet@" + proxyAddr),
			TLSConfig: &tls.Config{RootCAs: cert.Pool},
		})
		assert.Equal(t, "hello from ws", readText(t, c), "the server's first message, sent with its 101")
		roundTrip(t, c, websocket.MessageText, []byte("TLS inside the tunnel"))
		closeNormally(t, c)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
		assert.Equal(t, wssAddr, seen.Connect)
	})

	t.Run("unreachable target", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		closed := ln.Addr().String()
		_ = ln.Close()
		_, err = dialErr(t, "ws://"+closed, &websocket.DialOptions{Proxy: websocket.ProxyURL("http://alice:s3cr%3Aet@" + proxyAddr)})
		proxyRefusal(t, err, http.StatusInternalServerError)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
	})
}

func TestPeerProxyHTTPS(t *testing.T) {
	t.Parallel()
	proxyCert := testpeers.NewCert(t)
	serverCert := testpeers.NewCert(t) // another authority: each TLS config must do its own part
	p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "http", "--auth", "bob:pw", "--tls", proxyCert.CertFile, proxyCert.KeyFile)
	_, wssAddr := testpeers.Listen(t, "ws-server-dial.js", "--tls", serverCert.CertFile, serverCert.KeyFile)
	proxy := websocket.ProxyURL("https://bob:pw@" + proxyAddr)

	c, _ := mustDial(t, "wss://"+wssAddr+"/hello", &websocket.DialOptions{
		Proxy:     proxy,
		ProxyTLS:  &tls.Config{RootCAs: proxyCert.Pool},
		TLSConfig: &tls.Config{RootCAs: serverCert.Pool},
	})
	assert.Equal(t, "hello from ws", readText(t, c))
	roundTrip(t, c, websocket.MessageBinary, make([]byte, 300000))
	closeNormally(t, c)
	var seen connectSeen
	p.JSONLine(t, dialWait, &seen)
	assert.Equal(t, "Basic Ym9iOnB3", seen.Headers["proxy-authorization"])

	// ws:// through the HTTPS proxy.
	target := serve(t, nil, echo)
	c, _ = mustDial(t, target, &websocket.DialOptions{Proxy: proxy, ProxyTLS: &tls.Config{RootCAs: proxyCert.Pool}})
	roundTrip(t, c, websocket.MessageText, []byte("plain inside TLS to the proxy"))
	closeNormally(t, c)
	p.JSONLine(t, dialWait, &seen)

	// The proxy's TLS settings are not the server's.
	_, err := dialErr(t, "wss://"+wssAddr, &websocket.DialOptions{Proxy: proxy, TLSConfig: &tls.Config{RootCAs: proxyCert.Pool}})
	var pe *websocket.ProxyError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), "TLS handshake with the proxy")

	// Missing credentials over TLS: 407 all the same.
	_, err = dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("https://" + proxyAddr), ProxyTLS: &tls.Config{RootCAs: proxyCert.Pool}})
	proxyRefusal(t, err, http.StatusProxyAuthRequired)
}

func TestPeerProxyRefuses(t *testing.T) {
	t.Parallel()
	_, proxyAddr := testpeers.Listen(t, "proxy-server.js", "refuse")
	resp, err := dialErr(t, "ws://127.0.0.1:1/", &websocket.DialOptions{Proxy: websocket.ProxyURL(proxyAddr)})
	assert.Nil(t, resp)
	pe := proxyRefusal(t, err, http.StatusForbidden)
	body, _ := io.ReadAll(pe.Response.Body)
	assert.Equal(t, "no tunnels here", string(body))
	assert.Equal(t, "127.0.0.1:1", pe.Target)
}

func TestPeerProxySOCKS5(t *testing.T) {
	t.Parallel()
	target := serve(t, nil, echo)
	targetHost := strings.TrimPrefix(target, "ws://")
	_, port, _ := net.SplitHostPort(targetHost)

	t.Run("with credentials", func(t *testing.T) {
		t.Parallel()
		p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "socks5", "--auth", "carol:pa:ss")
		c, _ := mustDial(t, target+"/s", &websocket.DialOptions{Proxy: websocket.ProxyURL("socks5://carol:pa%3Ass@" + proxyAddr)})
		roundTrip(t, c, websocket.MessageText, []byte("through SOCKS5"))
		closeNormally(t, c)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)
		assert.Equal(t, targetHost, seen.Socks)

		// By name: the proxy resolves it.
		c, _ = mustDial(t, "ws://localhost:"+port+"/s", &websocket.DialOptions{Proxy: websocket.ProxyURL("socks5h://carol:pa%3Ass@" + proxyAddr)})
		closeNormally(t, c)
		p.JSONLine(t, dialWait, &seen)
		assert.Equal(t, "localhost:"+port, seen.Socks)

		_, err := dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("socks5://carol:nope@" + proxyAddr)})
		assert.ErrorIs(t, err, websocket.ErrSOCKS5Auth)
		assert.NotContains(t, err.Error(), "nope")
		_, err = dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("socks5://" + proxyAddr)})
		assert.ErrorIs(t, err, websocket.ErrSOCKS5Auth)
		var pe *websocket.ProxyError
		require.ErrorAs(t, err, &pe)
		assert.Nil(t, pe.Response)
	})

	t.Run("without credentials, refusing a port", func(t *testing.T) {
		t.Parallel()
		cert := testpeers.NewCert(t)
		_, wssAddr := testpeers.Listen(t, "ws-server-dial.js", "--tls", cert.CertFile, cert.KeyFile)
		p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "socks5", "--deny-port", port)
		c, _ := mustDial(t, "wss://"+wssAddr+"/hello", &websocket.DialOptions{
			Proxy:     websocket.ProxyURL("socks5://" + proxyAddr),
			TLSConfig: &tls.Config{RootCAs: cert.Pool},
		})
		assert.Equal(t, "hello from ws", readText(t, c))
		closeNormally(t, c)
		var seen connectSeen
		p.JSONLine(t, dialWait, &seen)

		_, err := dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("socks5://" + proxyAddr)})
		var pe *websocket.ProxyError
		require.ErrorAs(t, err, &pe)
		assert.Contains(t, err.Error(), "not allowed by ruleset")
	})
}

// TestPeerProxyFromEnvironment exercises the environment settings on loopback: injected
// through ProxyEnvironment, and read from the process environment by the default Proxy.
func TestPeerProxyFromEnvironment(t *testing.T) {
	p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "http", "--auth", "dave:pw")
	target := serve(t, nil, echo)
	targetHost := strings.TrimPrefix(target, "ws://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String() // a proxy that is not there: using it fails
	_ = ln.Close()

	env := websocket.ProxyEnvironment{HTTPProxy: "dave:pw@" + proxyAddr, HTTPSProxy: "http://" + dead}
	c, _ := mustDial(t, target, &websocket.DialOptions{Proxy: env.Proxy})
	closeNormally(t, c)
	var seen connectSeen
	p.JSONLine(t, dialWait, &seen)
	assert.Equal(t, targetHost, seen.Connect, "ws:// goes through HTTP_PROXY, loopback included")

	env = websocket.ProxyEnvironment{AllProxy: "http://dave:pw@" + proxyAddr}
	c, _ = mustDial(t, target, &websocket.DialOptions{Proxy: env.Proxy})
	closeNormally(t, c)
	p.JSONLine(t, dialWait, &seen)

	env = websocket.ProxyEnvironment{HTTPProxy: "http://" + dead, NoProxy: "example.com, 127.0.0.0/8"}
	c, _ = mustDial(t, target, &websocket.DialOptions{Proxy: env.Proxy})
	closeNormally(t, c)

	// The default reads the process environment; an explicit NoProxy overrides it.
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("http_proxy", "http://"+dead)
	t.Setenv("ALL_PROXY", "")
	t.Setenv("all_proxy", "")
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	_, err = dialErr(t, target, nil)
	var pe *websocket.ProxyError
	require.ErrorAs(t, err, &pe, "nil Proxy reads http_proxy")
	assert.Equal(t, "http://"+dead, pe.Proxy)
	c, _ = mustDial(t, target, &websocket.DialOptions{Proxy: websocket.NoProxy})
	closeNormally(t, c)
	t.Setenv("no_proxy", "localhost,127.0.0.1")
	c, _ = mustDial(t, target, nil)
	closeNormally(t, c)
}

func TestProxyEnvironmentChoice(t *testing.T) {
	t.Parallel()
	env := websocket.ProxyEnvironment{
		HTTPProxy:  "http://h:1",
		HTTPSProxy: "https://s:2",
		AllProxy:   "socks5://a:3",
		NoProxy:    "direct.example, .sub.example *.star.example,10.0.0.0/8 , 192.168.1.1, [::1]:8080, only.port:9000",
	}
	cases := []struct {
		env  websocket.ProxyEnvironment
		url  string
		want string // "" for none
	}{
		{env: env, url: "ws://chat.example/", want: "http://h:1"},
		{env: env, url: "http://chat.example/", want: "http://h:1"},
		{env: env, url: "wss://chat.example/", want: "https://s:2"},
		{env: env, url: "https://chat.example/", want: "https://s:2"},
		{env: websocket.ProxyEnvironment{AllProxy: "socks5://a:3"}, url: "wss://chat.example/", want: "socks5://a:3"},
		{env: websocket.ProxyEnvironment{AllProxy: "a:3"}, url: "ws://chat.example/", want: "http://a:3"},
		{env: env, url: "ws://127.0.0.1/", want: "http://h:1"},
		{env: env, url: "ws://localhost:8080/", want: "http://h:1"},
		{env: env, url: "ws://direct.example/", want: ""},
		{env: env, url: "ws://DIRECT.example./", want: ""},
		{env: env, url: "ws://a.direct.example/", want: ""},
		{env: env, url: "ws://notdirect.example/", want: "http://h:1"},
		{env: env, url: "ws://sub.example/", want: ""},
		{env: env, url: "ws://x.sub.example/", want: ""},
		{env: env, url: "ws://x.star.example/", want: ""},
		{env: env, url: "ws://10.1.2.3:99/", want: ""},
		{env: env, url: "ws://11.1.2.3/", want: "http://h:1"},
		{env: env, url: "ws://192.168.1.1/", want: ""},
		{env: env, url: "ws://[::1]:8080/", want: ""},
		{env: env, url: "ws://[::1]:8081/", want: "http://h:1"},
		{env: env, url: "ws://only.port:9000/", want: ""},
		{env: env, url: "ws://only.port/", want: "http://h:1"},
		{env: websocket.ProxyEnvironment{HTTPProxy: "http://h:1", NoProxy: "*"}, url: "ws://any.example/", want: ""},
		{env: websocket.ProxyEnvironment{HTTPProxy: "http://h:1", NoProxy: "example.com:443"}, url: "wss://example.com/", want: ""},
		{env: websocket.ProxyEnvironment{HTTPSProxy: "http://s:2"}, url: "ws://chat.example/", want: ""},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		require.NoError(t, err)
		got, err := tc.env.Proxy(&http.Request{URL: u})
		require.NoError(t, err, tc.url)
		if tc.want == "" {
			assert.Nil(t, got, "%s with %+v", tc.url, tc.env)
			continue
		}
		if assert.NotNil(t, got, "%s with %+v", tc.url, tc.env) {
			assert.Equal(t, tc.want, got.String(), tc.url)
		}
	}
	_, err := websocket.ProxyEnvironment{HTTPProxy: "ftp://p:1"}.Proxy(&http.Request{URL: &url.URL{Scheme: "http", Host: "x"}})
	assert.ErrorContains(t, err, "unsupported scheme")
	_, err = websocket.ProxyURL("http://[bad")(nil)
	assert.Error(t, err)
	got, err := websocket.ProxyURL("user:pw@proxy.example:3128")(nil)
	require.NoError(t, err)
	assert.Equal(t, "http://user:pw@proxy.example:3128", got.String())
}

func TestReadProxyEnvironment(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1",
		"https_proxy": "http://s:2", "all_proxy": "socks5://a:3", "NO_PROXY": "x.example",
	}
	env := websocket.ReadProxyEnvironment(func(k string) string { return vars[k] })
	assert.Equal(t, websocket.ProxyEnvironment{HTTPProxy: "http://upper:1", HTTPSProxy: "http://s:2", AllProxy: "socks5://a:3", NoProxy: "x.example"}, env)
	vars["REQUEST_METHOD"] = "GET" // CGI: HTTP_PROXY may come from a request's Proxy header
	env = websocket.ReadProxyEnvironment(func(k string) string { return vars[k] })
	assert.Equal(t, "http://lower:1", env.HTTPProxy)
}

// fakeProxy runs an HTTP proxy written here, for what real proxies cannot be made to do: it
// reads each CONNECT and hands the connection to serve.
func fakeProxy(t *testing.T, serve func(conn net.Conn, br *bufio.Reader, req *http.Request)) string {
	t.Helper()
	return "http://" + requestServer(t, serve)
}

// relay connects the client to req's target and copies both ways until either side ends.
func relay(conn net.Conn, br *bufio.Reader, req *http.Request) {
	target, err := net.Dial("tcp", req.Host)
	if err != nil {
		return
	}
	defer target.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(target, br); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, target); done <- struct{}{} }()
	<-done
	_ = conn.Close()
	_ = target.Close()
	<-done
}

func TestProxyTunnelEdgeCases(t *testing.T) {
	t.Parallel()
	target := serve(t, nil, echo)

	t.Run("waits for the 200, keeps the tunnel despite Connection: close", func(t *testing.T) {
		t.Parallel()
		early := make(chan int, 1)
		proxy := fakeProxy(t, func(conn net.Conn, br *bufio.Reader, req *http.Request) {
			// Nothing may arrive before the proxy answers.
			_ = conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			n, _ := br.Read(make([]byte, 1))
			early <- n
			_ = conn.SetDeadline(time.Now().Add(dialWait))
			_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\nConnection: close\r\nProxy-Agent: fake\r\n\r\n")
			relay(conn, br, req)
		})
		c, _ := mustDial(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL(proxy)})
		assert.Equal(t, 0, <-early, "the client sent bytes before the proxy's 200")
		roundTrip(t, c, websocket.MessageText, []byte("tunnel kept"))
		closeNormally(t, c)
	})

	t.Run("bytes after the 200 are the tunnel's", func(t *testing.T) {
		t.Parallel()
		// The 200 and, in the same write, the start of what the tunnel carries: a 101 that
		// cannot match the key. A client that dropped those bytes would wait for a response
		// until its deadline; one that keeps them reads this 101 and refuses it.
		proxy := fakeProxy(t, func(conn net.Conn, br *bufio.Reader, req *http.Request) {
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"+
				"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Early: yes\r\n\r\n")
			_, _ = io.Copy(io.Discard, br)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, target, &websocket.DialOptions{Proxy: websocket.ProxyURL(proxy)})
		var he *websocket.HandshakeError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, "yes", resp.Header.Get("X-Early"))
		assert.Contains(t, he.Reason, "Sec-WebSocket-Accept")
	})

	t.Run("any 2xx opens the tunnel", func(t *testing.T) {
		t.Parallel()
		proxy := fakeProxy(t, func(conn net.Conn, br *bufio.Reader, req *http.Request) {
			_, _ = io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n")
			relay(conn, br, req)
		})
		c, _ := mustDial(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL(proxy)})
		roundTrip(t, c, websocket.MessageText, []byte("204 is fine"))
		closeNormally(t, c)
	})

	t.Run("a silent proxy is bounded by the context", func(t *testing.T) {
		t.Parallel()
		proxy := fakeProxy(t, func(conn net.Conn, br *bufio.Reader, req *http.Request) {
			_, _ = io.Copy(io.Discard, br)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err := websocket.Dial(ctx, target, &websocket.DialOptions{Proxy: websocket.ProxyURL(proxy)})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})

	t.Run("proxy not reachable", func(t *testing.T) {
		t.Parallel()
		_, err := dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("http://127.0.0.1:1")})
		var pe *websocket.ProxyError
		require.ErrorAs(t, err, &pe)
		var oe *net.OpError
		assert.True(t, errors.As(err, &oe), "the network error is kept: %v", err)
	})

	t.Run("bad proxy URL", func(t *testing.T) {
		t.Parallel()
		_, err := dialErr(t, target, &websocket.DialOptions{Proxy: websocket.ProxyURL("gopher://p:70")})
		assert.ErrorContains(t, err, "unsupported scheme")
	})
}

// TestProxyErrorsNameTheTarget: a proxy that cannot be reached, and a server that is no proxy,
// give errors that name the proxy, the target and what went wrong.
func TestProxyErrorsNameTheTarget(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := ln.Addr().String()
	ln.Close() // nothing listens there now

	raw, err := net.Listen("tcp", "127.0.0.1:0") // answers with bytes that are not HTTP
	require.NoError(t, err)
	defer raw.Close()
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HelloHTTP/1.1 200 OK\r\n\r\n")
			c.Close()
		}
	}()

	for _, tc := range []struct {
		name, proxy string
		want        []string
	}{
		{"unreachable http", "http://" + deadAddr, []string{"proxy http://" + deadAddr, "tunnel to example.invalid:80", "cannot reach the proxy", "connection refused"}},
		{"unreachable socks5", "socks5://" + deadAddr, []string{"proxy socks5://" + deadAddr, "tunnel to example.invalid:80", "cannot reach the proxy"}},
		{"not a proxy", "http://" + raw.Addr().String(), []string{"tunnel to example.invalid:80", "is it an HTTP proxy?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, err := websocket.Dial(ctx, "ws://example.invalid/", &websocket.DialOptions{Proxy: websocket.ProxyURL(tc.proxy)})
			var pe *websocket.ProxyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "example.invalid:80", pe.Target)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
