package herald

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/protocol"
)

// newTestServer runs srv behind an httptest server and closes both when the test ends.
func newTestServer(t *testing.T, srv *Server) string {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// rawClient speaks nes by hand over gobwas/ws's client.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	rw   io.ReadWriter // reads what the handshake buffered first, then conn
	asm  protocol.Assembler
}

func dialRaw(t *testing.T, url string, header http.Header) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(header)}
	conn, br, _, err := d.Dial(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	return &rawClient{t: t, conn: conn, rw: struct {
		io.Reader
		io.Writer
	}{rd, conn}}
}

func (c *rawClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(c.t, err)
	require.NoError(c.t, wsutil.WriteClientText(c.conn, b))
}

// next returns the next whole message, or fails after timeout.
func (c *rawClient) next(timeout time.Duration) map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		data, _, err := wsutil.ReadServerData(c.rw)
		require.NoError(c.t, err)
		msg, err := c.asm.Add(data)
		require.NoError(c.t, err)
		if msg == nil {
			continue
		}
		var m map[string]any
		require.NoError(c.t, json.Unmarshal(msg, &m), string(msg))
		return m
	}
}

// closed waits for the server to close the connection, returning the close code.
func (c *rawClient) closed(timeout time.Duration) ws.StatusCode {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, _, err := wsutil.ReadServerData(c.rw)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				return ce.Code
			}
			var ne net.Error
			require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
			return ws.StatusAbnormalClosure
		}
	}
}

func (c *rawClient) hello(auth any) map[string]any {
	c.t.Helper()
	m := map[string]any{"type": "hello", "id": 1, "version": "2"}
	if auth != nil {
		m["auth"] = auth
	}
	c.send(m)
	return c.next(5 * time.Second)
}

func TestSlowConsumerIsDisconnectedWithoutDelayingOthers(t *testing.T) {
	t.Parallel()
	// With a send timeout of an hour, a Publish that waited on the slow socket would hang.
	srv := NewServer(nil, &Options{SendQueueLimit: 1 << 20, SendTimeout: time.Hour, Heartbeat: &Heartbeat{Disabled: true}})
	srv.Subscription("/feed", nil)
	url := newTestServer(t, srv)

	slow := dialRaw(t, url, nil)
	_ = slow.conn.(*net.TCPConn).SetReadBuffer(4 << 10) // keep the kernel from absorbing it all
	slow.hello(nil)
	slow.send(map[string]any{"type": "sub", "id": 2, "path": "/feed"})
	slow.next(5 * time.Second)
	fast := dialRaw(t, url, nil)
	fast.hello(nil)
	fast.send(map[string]any{"type": "sub", "id": 2, "path": "/feed"})
	fast.next(5 * time.Second)

	// The slow client never reads again; the fast one reads everything. Publishing must
	// never block, and the slow socket must go once its queue passes the bound (after the
	// kernel's socket buffers filled).
	const count = 1000
	big := strings.Repeat("x", 16<<10)
	received := make(chan int, 1)
	go func() {
		// Count frames without decoding them, to keep up.
		n := 0
		_ = fast.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for n < count {
			if _, _, err := wsutil.ReadServerData(fast.rw); err != nil {
				break
			}
			n++
		}
		received <- n
	}()
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range count {
			if err := srv.Publish("/feed", map[string]any{"i": i, "pad": big}, nil); err != nil {
				t.Error(err)
			}
			if i%10 == 9 {
				time.Sleep(5 * time.Millisecond) // let the fast reader keep its queue under the bound
			}
		}
	}()
	select {
	case <-published:
	case <-time.After(60 * time.Second):
		t.Fatal("Publish is waiting on the slow socket")
	}
	select {
	case n := <-received:
		assert.Equal(t, count, n)
	case <-time.After(30 * time.Second):
		t.Fatal("the fast client did not get every publication")
	}
	require.Eventually(t, func() bool {
		n := 0
		srv.EachSocket(func(*Socket) bool { n++; return true })
		return n == 1
	}, 10*time.Second, 20*time.Millisecond, "the slow socket was not disconnected")
}

func TestHeartbeatDropsSilentClientsAndKeepsLiveOnes(t *testing.T) {
	t.Parallel()
	// A live client has the timeout (200 ms) to answer each ping: generous enough for a
	// machine loaded with the whole suite under -race, where 50 ms was not.
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Interval: 400 * time.Millisecond, Timeout: 200 * time.Millisecond}})
	url := newTestServer(t, srv)

	live := dialRaw(t, url, nil)
	hello := live.hello(nil)
	assert.Equal(t, map[string]any{"interval": float64(400), "timeout": float64(200)}, hello["heartbeat"])
	silent := dialRaw(t, url, nil)
	silent.hello(nil)

	var wg sync.WaitGroup
	wg.Go(func() {
		// The live client answers every ping, as the official client does, for five intervals.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			m := live.next(time.Second)
			if m["type"] == "ping" {
				live.send(map[string]any{"type": "ping", "id": 99})
			}
		}
	})
	// The silent client reads nothing and answers nothing: it must be closed.
	assert.Equal(t, ws.StatusNoStatusRcvd, silent.closed(3*time.Second))
	wg.Wait()
	live.send(map[string]any{"type": "request", "id": 5, "method": "GET", "path": "/x"})
	for {
		if m := live.next(time.Second); m["type"] == "request" {
			break
		}
	}
}

func TestChunkedMessagesReassemble(t *testing.T) {
	t.Parallel()
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"text":"`+strings.Repeat("é🌍", 500)+`"}`)
	}), &Options{MaxChunkChars: 100, Heartbeat: &Heartbeat{Disabled: true}})
	url := newTestServer(t, srv)
	c := dialRaw(t, url, nil)
	c.hello(nil)
	c.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/big"})
	m := c.next(5 * time.Second)
	assert.Equal(t, strings.Repeat("é🌍", 500), m["payload"].(map[string]any)["text"])
}

func TestPanicInHandlerClosesOnlyThatSocket(t *testing.T) {
	t.Parallel()
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("handler bug")
		}
		_, _ = io.WriteString(w, "ok")
	}), &Options{Heartbeat: &Heartbeat{Disabled: true}})
	url := newTestServer(t, srv)
	victim := dialRaw(t, url, nil)
	victim.hello(nil)
	other := dialRaw(t, url, nil)
	other.hello(nil)
	victim.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/panic"})
	m := victim.next(5 * time.Second)
	assert.Equal(t, float64(500), m["statusCode"])
	assert.Equal(t, ws.StatusInternalServerError, victim.closed(5*time.Second))
	other.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/fine"})
	assert.Equal(t, "ok", other.next(5 * time.Second)["payload"])
}

func TestAuthTimeoutAndMaxConnections(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{MaxConnections: 1, Heartbeat: &Heartbeat{Disabled: true},
		Auth: &AuthOptions{Timeout: 100 * time.Millisecond}})
	url := newTestServer(t, srv)
	first := dialRaw(t, url, nil)
	second := dialRaw(t, url, nil)
	assert.Equal(t, ws.StatusNoStatusRcvd, second.closed(5*time.Second), "past MaxConnections")
	assert.Equal(t, ws.StatusNoStatusRcvd, first.closed(5*time.Second), "no hello within the auth timeout")
}

// TestHelloTimeoutWithoutAuth: a socket that never says hello is closed after HelloTimeout
// whatever the auth settings; one that says hello in time stays; a negative HelloTimeout
// turns it off.
func TestHelloTimeoutWithoutAuth(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{HelloTimeout: 150 * time.Millisecond, Heartbeat: &Heartbeat{Disabled: true}})
	url := newTestServer(t, srv)
	silent := dialRaw(t, url, nil)
	start := time.Now()
	assert.Equal(t, ws.StatusNoStatusRcvd, silent.closed(5*time.Second), "no hello within HelloTimeout")
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)

	polite := dialRaw(t, url, nil)
	assert.Equal(t, "hello", polite.hello(nil)["type"])
	time.Sleep(300 * time.Millisecond)
	polite.send(map[string]any{"type": "ping", "id": 2})
	polite.send(map[string]any{"type": "request", "id": 3, "method": "GET", "path": "/nope"})
	assert.EqualValues(t, 404, polite.next(5 * time.Second)["statusCode"], "a socket that said hello is kept")

	patient := NewServer(nil, &Options{HelloTimeout: -1, Heartbeat: &Heartbeat{Disabled: true}})
	quiet := dialRaw(t, newTestServer(t, patient), nil)
	_ = quiet.conn.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	_, _, err := wsutil.ReadServerData(quiet.rw)
	var ne net.Error
	assert.True(t, errors.As(err, &ne) && ne.Timeout(), "HelloTimeout -1 keeps a silent socket: %v", err)
}

func TestTokenAndCookieAuth(t *testing.T) {
	t.Parallel()
	password := strings.Repeat("secret-", 6)
	authenticate := func(r *http.Request) (*Credentials, error) {
		switch r.Header.Get("X-User") {
		case "":
			return nil, nil
		case "john":
			return &Credentials{User: "john", Scope: []string{"reader"}}, nil
		}
		return nil, errors.New("unknown user")
	}
	for _, typ := range []string{"token", "cookie"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
				Type: typ, Password: password, Authenticate: authenticate, Required: true, CookieInsecure: true}})
			srv.Subscription("/secret", &SubscriptionOptions{Auth: &SubscriptionAuth{Scope: []string{"reader"}}})
			srv.Subscription("/admin", &SubscriptionOptions{Auth: &SubscriptionAuth{Scope: []string{"admin"}}})
			url := newTestServer(t, srv)
			httpURL := "http" + strings.TrimPrefix(url, "ws")

			req, _ := http.NewRequest("GET", httpURL+"/nes/auth", nil)
			req.Header.Set("X-User", "john")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var body map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			resp.Body.Close()
			assert.Equal(t, "authenticated", body["status"])

			var c *rawClient
			if typ == "token" {
				require.NotEmpty(t, body["token"])
				c = dialRaw(t, url, nil)
				assert.Equal(t, "hello", c.hello(body["token"])["type"])
			} else {
				cookies := resp.Cookies()
				require.Len(t, cookies, 1)
				assert.Equal(t, "nes", cookies[0].Name)
				assert.True(t, cookies[0].HttpOnly)
				assert.Equal(t, http.SameSiteStrictMode, cookies[0].SameSite)
				c = dialRaw(t, url, http.Header{"Cookie": {cookies[0].Name + "=" + cookies[0].Value}})
				assert.Equal(t, "hello", c.hello(nil)["type"])
			}
			c.send(map[string]any{"type": "sub", "id": 2, "path": "/secret"})
			assert.Equal(t, "sub", c.next(5 * time.Second)["type"])
			c.send(map[string]any{"type": "sub", "id": 3, "path": "/admin"})
			m := c.next(5 * time.Second)
			assert.Equal(t, float64(403), m["statusCode"])
			assert.Equal(t, "Insufficient scope to subscribe, expected any of: admin", m["payload"].(map[string]any)["message"])

			// Without credentials the hello is refused, and a forged token too.
			anon := dialRaw(t, url, nil)
			assert.Equal(t, "Connection requires authentication", anon.hello(nil)["payload"].(map[string]any)["message"])
			forged := dialRaw(t, url, nil)
			wantMsg := "Invalid token"
			var m2 map[string]any
			if typ == "cookie" {
				forged = dialRaw(t, url, http.Header{"Cookie": {"nes=forged"}})
				wantMsg = "Invalid nes authentication cookie"
				m2 = forged.hello(nil)
			} else {
				m2 = forged.hello("forged")
			}
			assert.Equal(t, float64(401), m2["statusCode"])
			assert.Equal(t, wantMsg, m2["payload"].(map[string]any)["message"])
		})
	}
}

func TestVerifyDisconnectsRevokedCredentials(t *testing.T) {
	t.Parallel()
	var revoked sync.Map
	srv := NewServer(http.NotFoundHandler(), &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Authenticate: func(r *http.Request) (*Credentials, error) {
			return &Credentials{User: r.Header.Get("X-User")}, nil
		},
		Verify: func(ctx context.Context, c *Credentials) error {
			if _, ok := revoked.Load(c.User); ok {
				return errors.New("revoked")
			}
			return nil
		},
		VerifyInterval: time.Millisecond,
	}})
	url := newTestServer(t, srv)
	c := dialRaw(t, url, nil)
	c.hello(map[string]any{"headers": map[string]string{"x-user": "mallory"}})
	revoked.Store("mallory", true)
	time.Sleep(5 * time.Millisecond)
	c.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/x"})
	m := c.next(5 * time.Second)
	assert.Equal(t, float64(403), m["statusCode"])
	assert.Equal(t, "Credential verification failed", m["payload"].(map[string]any)["message"])
	assert.Equal(t, ws.StatusNoStatusRcvd, c.closed(5*time.Second))
}

func TestRevokeAndPerUserLimits(t *testing.T) {
	t.Parallel()
	var unsubscribed sync.Map
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Index: true, MaxConnectionsPerUser: 1,
		Authenticate: func(r *http.Request) (*Credentials, error) { return &Credentials{User: r.Header.Get("X-User")}, nil },
	}})
	srv.Subscription("/room/{id}", &SubscriptionOptions{
		Auth: &SubscriptionAuth{Index: true},
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) {
			unsubscribed.Store(path, params["id"])
		},
	})
	url := newTestServer(t, srv)
	c := dialRaw(t, url, nil)
	c.hello(map[string]any{"headers": map[string]string{"x-user": "ann"}})
	second := dialRaw(t, url, nil)
	m := second.hello(map[string]any{"headers": map[string]string{"x-user": "ann"}})
	assert.Equal(t, float64(503), m["statusCode"])

	c.send(map[string]any{"type": "sub", "id": 2, "path": "/room/7"})
	c.next(5 * time.Second)
	require.NoError(t, srv.Publish("/room/7", "to ann", &PublishOptions{User: "ann"}))
	assert.Equal(t, map[string]any{"type": "pub", "path": "/room/7", "message": "to ann"}, c.next(5*time.Second))
	require.NoError(t, srv.Publish("/room/7", "to bob", &PublishOptions{User: "bob"}))

	var sock *Socket
	srv.EachSubscriber("/room/7", "", func(s *Socket) bool { sock = s; return false })
	require.NotNil(t, sock)
	require.NoError(t, sock.Revoke(context.Background(), "/room/7", map[string]string{"reason": "kicked"}))
	assert.Equal(t, map[string]any{"type": "revoke", "path": "/room/7", "message": map[string]any{"reason": "kicked"}}, c.next(5*time.Second),
		"the publication to bob must not have reached ann")
	v, ok := unsubscribed.Load("/room/7")
	assert.True(t, ok)
	assert.Equal(t, "7", v)
	assert.Empty(t, sock.Subscriptions())
}
