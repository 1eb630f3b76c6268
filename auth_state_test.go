package herald

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testPassword = strings.Repeat("secret-", 6)

// token seals credentials as the auth endpoint would.
func token(t *testing.T, srv *Server, user string) string {
	t.Helper()
	tok, err := srv.auth.sealer.seal(&Credentials{User: user}, srv.auth.opts.TTL)
	require.NoError(t, err)
	return tok
}

// assertClosedAfter checks that nothing but the close follows: a request sent now gets no
// answer, and the server cleans the socket up by itself.
func (m *memSocket) assertClosedAfter(sock *Socket) {
	m.t.Helper()
	select {
	case m.mt.in <- []byte(`{"type":"request","id":99,"method":"GET","path":"/x"}`):
	default:
	}
	assert.True(m.t, m.gone(sock), "the server kept the socket open")
	m.mt.mu.Lock()
	extra := len(m.mt.out) - m.seen
	m.mt.mu.Unlock()
	assert.Zero(m.t, extra, "the server sent more after the failure")
	m.srv.mu.Lock()
	defer m.srv.mu.Unlock()
	for user, list := range m.srv.byUser {
		assert.NotContains(m.t, list, sock, "a closed socket stays in the index of %q", user)
	}
}

// TestFailedHelloAnswersThenCloses: every hello that fails once accepted is answered, then
// the socket is closed; nothing it sends afterwards is served.
func TestFailedHelloAnswersThenCloses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		auth   AuthOptions
		before func(t *testing.T, srv *Server) // connections made first
		hello  func(t *testing.T, srv *Server) map[string]any
		status float64
	}{
		{name: "bogus token with Required", auth: AuthOptions{Type: "token", Password: testPassword, Required: true},
			hello: func(*testing.T, *Server) map[string]any {
				return map[string]any{"type": "hello", "id": 1, "version": "2", "auth": "bogus"}
			}, status: 401},
		{name: "no credentials with Required", auth: AuthOptions{Required: true},
			hello: func(*testing.T, *Server) map[string]any {
				return map[string]any{"type": "hello", "id": 1, "version": "2"}
			},
			status: 401},
		{name: "direct auth refused", auth: AuthOptions{Authenticate: func(*http.Request) (*Credentials, error) {
			return nil, errors.New("no such user")
		}}, hello: func(*testing.T, *Server) map[string]any {
			return map[string]any{"type": "hello", "id": 1, "version": "2", "auth": map[string]any{"headers": map[string]string{"x": "y"}}}
		}, status: 401},
		{name: "per-user limit", auth: AuthOptions{Type: "token", Password: testPassword, Index: true, MaxConnectionsPerUser: 1},
			before: func(t *testing.T, srv *Server) {
				first := openMemSocket(t, srv, nil)
				first.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": token(t, srv, "ann")})
				require.Equal(t, "hello", first.next()["type"])
			},
			hello: func(t *testing.T, srv *Server) map[string]any {
				return map[string]any{"type": "hello", "id": 1, "version": "2", "auth": token(t, srv, "ann")}
			}, status: 503},
		{name: "Verify refuses a token", auth: AuthOptions{Type: "token", Password: testPassword,
			Verify: func(ctx context.Context, c *Credentials) error { return errors.New("banned") }},
			hello: func(t *testing.T, srv *Server) map[string]any {
				return map[string]any{"type": "hello", "id": 1, "version": "2", "auth": token(t, srv, "mallory")}
			}, status: 403},
		{name: "a sub in the hello", auth: AuthOptions{},
			hello: func(*testing.T, *Server) map[string]any {
				return map[string]any{"type": "hello", "id": 1, "version": "2", "subs": []string{"/open", "/nosuch"}}
			}, status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth := tc.auth
			srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &auth})
			srv.Subscription("/open", nil)
			t.Cleanup(srv.Close)
			if tc.before != nil {
				tc.before(t, srv)
			}
			c := openMemSocket(t, srv, nil)
			sock := c.socketOf()
			c.send(tc.hello(t, srv))
			m := c.next()
			assert.Equal(t, tc.status, m["statusCode"], m)
			c.assertClosedAfter(sock)
			assert.Equal(t, 0, subscribedTimes(srv, sock, "/open"), "the closed socket stays subscribed")
		})
	}
}

// TestHelloTimerRunsUntilHelloSucceeds: the hello timer bounds the whole hello, credential
// checks included.
func TestHelloTimerRunsUntilHelloSucceeds(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, HelloTimeout: 100 * time.Millisecond, Auth: &AuthOptions{
		Authenticate: func(r *http.Request) (*Credentials, error) {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return &Credentials{User: "slow"}, nil
		}}})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	sock := c.socket()
	start := time.Now()
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": map[string]any{"headers": map[string]string{"a": "b"}}})
	require.True(t, c.gone(sock))
	assert.Less(t, time.Since(start), 2*time.Second, "the hello timer stopped before the credentials were checked")
}

// TestRevocationReachesIdleSocketsAndTokenHellos: Verify runs at a token hello, and before a
// publication reaches a socket whose verification is due; a refused socket gets nothing.
func TestRevocationReachesIdleSocketsAndTokenHellos(t *testing.T) {
	t.Parallel()
	var revoked sync.Map
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Type: "token", Password: testPassword, VerifyInterval: 20 * time.Millisecond,
		Verify: func(ctx context.Context, c *Credentials) error {
			if _, ok := revoked.Load(c.User); ok {
				return errors.New("revoked")
			}
			return nil
		}}})
	srv.Subscription("/news", nil)
	t.Cleanup(srv.Close)
	tok := token(t, srv, "mallory")
	idle := openMemSocket(t, srv, nil)
	idle.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": tok, "subs": []string{"/news"}})
	require.Equal(t, "hello", idle.next()["type"])
	sock := idle.socket()
	require.NoError(t, srv.Publish("/news", "before", nil))
	assert.Equal(t, "before", idle.next()["message"])

	revoked.Store("mallory", true)
	time.Sleep(30 * time.Millisecond)
	require.NoError(t, srv.Publish("/news", "after", nil))
	idle.assertClosedAfter(sock) // and "after" was not delivered

	again := openMemSocket(t, srv, nil)
	again.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": tok})
	m := again.next()
	assert.Equal(t, float64(403), m["statusCode"], "a revoked user's still-valid token was accepted")
	assert.Equal(t, "Credential verification failed", m["payload"].(map[string]any)["message"])
}

// TestRevokeUser: RevokeUser closes the user's sockets at once and refuses the tokens and
// cookies issued before it; other users and newer tokens are unaffected.
func TestRevokeUser(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"token", "cookie"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
				Type: typ, Password: testPassword, Index: typ == "token"}})
			t.Cleanup(srv.Close)
			open := func(user, tok string) *memSocket {
				var h http.Header
				hello := map[string]any{"type": "hello", "id": 1, "version": "2"}
				if typ == "cookie" {
					h = http.Header{"Cookie": {"nes=" + tok}}
				} else {
					hello["auth"] = tok
				}
				c := openMemSocket(t, srv, h)
				c.send(hello)
				return c
			}
			old := token(t, srv, "ann")
			ann1, ann2, bob := open("ann", old), open("ann", old), open("bob", token(t, srv, "bob"))
			for _, c := range []*memSocket{ann1, ann2, bob} {
				require.Equal(t, "hello", c.next()["type"])
			}
			var anns []*Socket
			srv.EachSocket(func(s *Socket) bool {
				if s.user() == "ann" {
					anns = append(anns, s)
				}
				return true
			})
			require.Len(t, anns, 2)
			require.NoError(t, srv.RevokeUser("ann"))
			assert.True(t, ann1.gone(anns[0]) && ann1.gone(anns[1]), "RevokeUser left a socket of the user open")
			require.NoError(t, srv.Broadcast("still here", nil))
			assert.Equal(t, "still here", bob.next()["message"])

			back := open("ann", old)
			m := back.next()
			assert.Equal(t, float64(403), m["statusCode"], "a token issued before RevokeUser was accepted")
			time.Sleep(2 * time.Millisecond)
			fresh := open("ann", token(t, srv, "ann"))
			assert.Equal(t, "hello", fresh.next()["type"], "a token issued after RevokeUser was refused")

			assert.Error(t, srv.RevokeUser(""))
			assert.Error(t, NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}}).RevokeUser("ann"))
		})
	}
}

// TestReauthMovesTheSocketBetweenUsers: a reauth as another user moves the socket in every
// user index (the server's and the subscriptions'), so per-user publications and broadcasts
// follow the credentials.
func TestReauthMovesTheSocketBetweenUsers(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Type: "token", Password: testPassword, Index: true}})
	srv.Subscription("/room", &SubscriptionOptions{Auth: &SubscriptionAuth{Index: true}})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": token(t, srv, "ann"), "subs": []string{"/room"}})
	require.Equal(t, "hello", c.next()["type"])
	c.send(map[string]any{"type": "reauth", "id": 2, "auth": token(t, srv, "bob")})
	require.Equal(t, "reauth", c.next()["type"])
	require.NoError(t, srv.Publish("/room", "for ann", &PublishOptions{User: "ann"}))
	require.NoError(t, srv.Broadcast("for ann", &BroadcastOptions{User: "ann"}))
	require.NoError(t, srv.Publish("/room", "for bob", &PublishOptions{User: "bob"}))
	assert.Equal(t, "for bob", c.next()["message"], "a publication for the socket's former user reached it")
	srv.mu.Lock()
	assert.Empty(t, srv.byUser["ann"])
	assert.Len(t, srv.byUser["bob"], 1)
	srv.mu.Unlock()
}

// TestNoPushesBeforeHelloSucceeds: broadcasts skip a socket whose hello is still running.
func TestNoPushesBeforeHelloSucceeds(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true},
		OnConnection: func(ctx context.Context, s *Socket) error {
			close(entered)
			<-release
			return errors.New("refused")
		}})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2"})
	<-entered
	require.NoError(t, srv.Broadcast("too early", nil))
	close(release)
	m := c.next()
	assert.Equal(t, "hello", m["type"], "a broadcast reached a socket before its hello succeeded: %v", m)
	assert.Equal(t, float64(500), m["statusCode"])
}

// TestVerifyPanicClosesOneSocket: a panic in Verify closes that socket and never the server.
func TestVerifyPanicClosesOneSocket(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Authenticate:   func(r *http.Request) (*Credentials, error) { return &Credentials{User: r.Header.Get("X-User")}, nil },
		VerifyInterval: time.Millisecond,
		Verify: func(ctx context.Context, c *Credentials) error {
			if c.User == "bug" {
				panic("verify bug")
			}
			return nil
		}}})
	t.Cleanup(srv.Close)
	c := openMemSocket(t, srv, nil)
	sock := c.socket()
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": map[string]any{"headers": map[string]string{"x-user": "ann"}}})
	require.Equal(t, "hello", c.next()["type"])
	bug := openMemSocket(t, srv, nil)
	bugSock := bug.socketOf()
	bug.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": map[string]any{"headers": map[string]string{"x-user": "bug"}}})
	assert.Equal(t, float64(500), bug.next()["statusCode"])
	bug.assertClosedAfter(bugSock)

	// The same panic when Verify is due before a message: only that socket goes.
	require.NoError(t, sock.server.bindCredentials(sock, &Credentials{User: "bug"}, time.Now()))
	time.Sleep(5 * time.Millisecond)
	c.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/x"})
	assert.Equal(t, float64(403), c.next()["statusCode"], "a Verify that panics refuses the credentials")
	c.assertClosedAfter(sock)
}

// TestReauthRevokesSubscriptionsTheNewCredentialsMayNotHave: after a reauth, subscriptions
// whose auth rules the new credentials fail are revoked, and publications stop.
func TestReauthRevokesSubscriptionsTheNewCredentialsMayNotHave(t *testing.T) {
	t.Parallel()
	var unsubscribed sync.Map
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Type: "token", Password: testPassword}})
	srv.Subscription("/user/{id}", &SubscriptionOptions{
		Auth: &SubscriptionAuth{Scope: []string{"user-{id}"}},
		OnUnsubscribe: func(ctx context.Context, s *Socket, path string, params map[string]string) {
			unsubscribed.Store(path, true)
		}})
	srv.Subscription("/public", nil)
	t.Cleanup(srv.Close)
	seal := func(user string) string {
		tok, err := srv.auth.sealer.seal(&Credentials{User: user, Scope: []string{"user-" + user}}, time.Hour)
		require.NoError(t, err)
		return tok
	}
	c := openMemSocket(t, srv, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": seal("ann"), "subs": []string{"/user/ann", "/public"}})
	require.Equal(t, "hello", c.next()["type"])
	sock := c.socket()
	c.send(map[string]any{"type": "reauth", "id": 2, "auth": seal("bob")})
	assert.Equal(t, map[string]any{"type": "revoke", "path": "/user/ann"}, c.next())
	assert.Equal(t, "reauth", c.next()["type"])
	require.NoError(t, srv.Publish("/user/ann", "ann's secret", nil))
	require.NoError(t, srv.Publish("/public", "news", nil))
	assert.Equal(t, "news", c.next()["message"], "ann's subscription outlived a reauth as bob")
	assert.Equal(t, []string{"/public"}, sock.Subscriptions())
	_, ok := unsubscribed.Load("/user/ann")
	assert.True(t, ok)
}
