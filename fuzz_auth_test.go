package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// authFuzzRecord counts a socket's callbacks, to check that they are paired.
type authFuzzRecord struct {
	mu           sync.Mutex
	subscribes   map[*Socket]map[string]int // OnSubscribe successes minus OnUnsubscribes
	connections  map[*Socket]int
	disconnected map[*Socket]int
}

// FuzzAuthStates drives two sockets of one user index at once through sequences of hello,
// reauth, sub, unsub and request, with good, bad and revoked credentials, while the server
// publishes, revokes users and disconnects sockets from outside. Reading is handed over while
// slow callbacks run, so messages of one socket are processed concurrently. It fails on any
// inconsistent state:
//   - a socket whose hello or reauth failed that stays open, or is sent anything after a
//     failed hello;
//   - a request served before the hello succeeded;
//   - a closed socket still in the server's socket list, the user index or a subscriber list;
//   - OnSubscribe without exactly one OnUnsubscribe, OnDisconnection not exactly once.
func FuzzAuthStates(f *testing.F) {
	f.Add([]byte{0, 6, 7, 11, 12, 14, 3, 8}, []byte{0, 11, 11, 12, 6, 14, 5})
	f.Add([]byte{1, 6, 10}, []byte{2, 10})
	f.Add([]byte{0x10, 7, 4, 14, 13, 14}, []byte{0, 7, 14, 15})
	f.Add([]byte{0, 11, 12, 11, 12, 11, 12, 15}, []byte{0x20, 3, 4, 3, 4, 14})
	f.Add([]byte{0, 0, 3, 5, 6}, []byte{0, 13, 0, 10})
	rec := &authFuzzRecord{subscribes: map[*Socket]map[string]int{}, connections: map[*Socket]int{}, disconnected: map[*Socket]int{}}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if SocketFrom(r.Context()) != nil && !SocketFrom(r.Context()).helloed() {
			w.WriteHeader(http.StatusTeapot) // served before the hello succeeded
			return
		}
		_, _ = w.Write([]byte(`"ok"`))
	}), &Options{
		Heartbeat: &Heartbeat{Disabled: true},
		Auth: &AuthOptions{Type: "token", Password: testPassword, Required: true, Index: true, MaxConnectionsPerUser: 2,
			VerifyInterval: time.Millisecond,
			Verify: func(ctx context.Context, c *Credentials) error {
				if c.User == "bob" {
					time.Sleep(2 * time.Millisecond) // past handoffDelay: a reauth runs beside what follows
				}
				if c.User == "mallory" {
					return errors.New("banned")
				}
				return nil
			}},
		OnConnection: func(ctx context.Context, s *Socket) error {
			rec.mu.Lock()
			rec.connections[s]++
			rec.mu.Unlock()
			return nil
		},
		OnDisconnection: func(s *Socket) {
			rec.mu.Lock()
			rec.disconnected[s]++
			rec.mu.Unlock()
		},
	})
	count := func(delta int) func(context.Context, *Socket, string, map[string]string) {
		return func(ctx context.Context, s *Socket, path string, _ map[string]string) {
			rec.mu.Lock()
			if rec.subscribes[s] == nil {
				rec.subscribes[s] = map[string]int{}
			}
			rec.subscribes[s][path] += delta
			rec.mu.Unlock()
		}
	}
	onSub := func(slow bool) func(context.Context, *Socket, string, map[string]string) error {
		return func(ctx context.Context, s *Socket, path string, params map[string]string) error {
			if slow {
				time.Sleep(2 * time.Millisecond) // past handoffDelay: reading is handed over
			}
			count(1)(ctx, s, path, params)
			return nil
		}
	}
	srv.Subscription("/open", &SubscriptionOptions{OnSubscribe: onSub(false), OnUnsubscribe: count(-1)})
	srv.Subscription("/slow", &SubscriptionOptions{OnSubscribe: onSub(true), OnUnsubscribe: count(-1)})
	srv.Subscription("/private", &SubscriptionOptions{OnSubscribe: onSub(false), OnUnsubscribe: count(-1),
		Auth: &SubscriptionAuth{Entity: "user", Index: true}})
	f.Cleanup(srv.Close)
	users := []string{"ann", "bob", "mallory"}
	tokens := map[string]string{}
	tokenFor := func(user string) string {
		if tokens[user] == "" {
			tok, err := srv.auth.sealer.seal(&Credentials{User: user}, time.Hour)
			if err != nil {
				f.Fatal(err)
			}
			tokens[user] = tok
		}
		return tokens[user]
	}
	for _, u := range users {
		tokenFor(u)
	}

	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) > 64 || len(b) > 64 {
			return
		}
		// Tokens issued before a RevokeUser of an earlier run would be refused: fresh ones.
		fresh := map[string]string{}
		for _, u := range users {
			tok, _ := srv.auth.sealer.seal(&Credentials{User: u}, time.Hour)
			fresh[u] = tok
		}
		r, _ := http.NewRequest("GET", "/", nil)
		type run struct {
			mt   *memTransport
			sock *Socket
		}
		runs := make([]*run, 2)
		for i := range runs {
			mt := newMemTransport()
			mt.in = make(chan []byte, 256)
			runs[i] = &run{mt: mt}
			go srv.serve(mt, r)
		}
		for _, rn := range runs {
			deadline := time.Now().Add(5 * time.Second)
			for rn.sock == nil && time.Now().Before(deadline) {
				srv.EachSocket(func(s *Socket) bool {
					if s.t == Transport(rn.mt) {
						rn.sock = s
						return false
					}
					return true
				})
				time.Sleep(100 * time.Microsecond)
			}
			if rn.sock == nil {
				t.Fatal("the socket never registered")
			}
		}
		msg := func(v map[string]any) []byte {
			data, _ := json.Marshal(v)
			return data
		}
		play := func(rn *run, ops []byte) {
			for i, op := range ops {
				id := i + 1
				user := users[int(op>>4)%len(users)]
				var m []byte
				switch op % 16 {
				case 0:
					m = msg(map[string]any{"type": "hello", "id": id, "version": "2", "auth": fresh[user], "subs": []string{"/open"}})
				case 1:
					m = msg(map[string]any{"type": "hello", "id": id, "version": "2", "auth": "bogus"})
				case 2:
					m = msg(map[string]any{"type": "hello", "id": id, "version": "2"})
				case 3, 4:
					m = msg(map[string]any{"type": "reauth", "id": id, "auth": fresh[user]})
				case 5:
					m = msg(map[string]any{"type": "reauth", "id": id, "auth": "bogus"})
				case 6, 7, 11:
					m = msg(map[string]any{"type": "sub", "id": id, "path": []string{"/open", "/private", "", "", "/slow"}[(op%16-6)%5]})
				case 8, 9, 12:
					m = msg(map[string]any{"type": "unsub", "id": id, "path": []string{"/open", "/private", "", "", "/slow"}[(op%16-8)%5]})
				case 10:
					m = msg(map[string]any{"type": "request", "id": id, "method": "GET", "path": "/x"})
				case 13:
					_ = srv.RevokeUser(user)
				case 14:
					_ = srv.Publish("/open", "pub", nil)
					_ = srv.Publish("/private", "pub", &PublishOptions{User: user})
					_ = srv.Broadcast("update", nil)
				case 15:
					if op&0x10 != 0 {
						rn.sock.Disconnect()
					} else {
						rn.sock.closeNow(nil)
					}
				}
				if m != nil {
					rn.mt.in <- m
				}
			}
		}
		var wg sync.WaitGroup
		wg.Go(func() { play(runs[0], a) })
		wg.Go(func() { play(runs[1], b) })
		wg.Wait()
		time.Sleep(20 * time.Millisecond)

		for _, rn := range runs {
			mustClose, err := checkAuthOutput(rn.mt)
			if err != nil {
				t.Fatal(err)
			}
			if mustClose && !waitGone(srv, rn.sock, 5*time.Second) {
				t.Fatalf("a socket whose auth failed stays open; it was sent %s", outOf(rn.mt))
			}
			_ = rn.mt.Close(nil)
			if !waitGone(srv, rn.sock, 5*time.Second) {
				t.Fatal("the socket was not cleaned up")
			}
		}
		// Cleanup is over once OnDisconnection ran.
		for _, rn := range runs {
			deadline := time.Now().Add(5 * time.Second)
			for {
				rec.mu.Lock()
				n := rec.disconnected[rn.sock]
				rec.mu.Unlock()
				if n > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		time.Sleep(time.Millisecond) // a second OnDisconnection would show now
		for _, rn := range runs {
			if err := checkGoneEverywhere(srv, rn.sock); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			subs, conns, discs := rec.subscribes[rn.sock], rec.connections[rn.sock], rec.disconnected[rn.sock]
			delete(rec.subscribes, rn.sock)
			delete(rec.connections, rn.sock)
			delete(rec.disconnected, rn.sock)
			rec.mu.Unlock()
			for path, n := range subs {
				if n != 0 {
					t.Fatalf("%s: OnSubscribe minus OnUnsubscribe is %d", path, n)
				}
			}
			if conns > 1 || discs != 1 {
				t.Fatalf("OnConnection ran %d times, OnDisconnection %d", conns, discs)
			}
		}
	})
}

func outOf(mt *memTransport) string {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	s := ""
	for _, b := range mt.out {
		s += string(b) + " "
	}
	return s
}

// checkAuthOutput checks what a socket was sent, and says whether a failure means the server
// must close it.
func checkAuthOutput(mt *memTransport) (mustClose bool, err error) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	helloOK, failedHello, failedReauth := false, false, false
	for _, raw := range mt.out {
		var m struct {
			Type       string          `json:"type"`
			StatusCode int             `json:"statusCode"`
			RawPayload json.RawMessage `json:"payload"`
			Payload    struct {
				Message string `json:"message"`
			} `json:"-"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, fmt.Errorf("invalid JSON sent: %s", raw)
		}
		_ = json.Unmarshal(m.RawPayload, &m.Payload) // errors have {message}; replies anything
		if failedHello {
			return true, fmt.Errorf("sent %s after a failed hello", raw)
		}
		switch {
		case m.Type == "hello" && m.StatusCode == 0:
			helloOK = true
		case m.Type == "hello" && m.Payload.Message != "Connection already initialized":
			failedHello, mustClose = true, true
		case m.Payload.Message == "Connection is not initialized":
			// before a hello: refused, nothing changed
		case m.Type == "reauth" && m.StatusCode != 0, m.StatusCode == http.StatusForbidden:
			failedReauth, mustClose = true, true
		case (m.Type == "pub" || m.Type == "update") && failedReauth, m.Type == "update" && !helloOK:
			// (A pub may precede the hello reply: the hello's subs join before it is sent.)
			return true, fmt.Errorf("sent %s after a failed reauth or before a successful hello", raw)
		case m.Type == "request" && (m.StatusCode == http.StatusTeapot || m.StatusCode < 400 && !helloOK):
			return true, fmt.Errorf("a request was served before the hello succeeded: %s", raw)
		}
	}
	return mustClose, nil
}

func waitGone(srv *Server, sock *Socket, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		srv.mu.Lock()
		_, open := srv.sockets[sock]
		srv.mu.Unlock()
		if !open {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

// checkGoneEverywhere reports a closed socket left in any list of the server.
func checkGoneEverywhere(srv *Server, sock *Socket) error {
	srv.mu.Lock()
	for user, list := range srv.byUser {
		for _, s := range list {
			if s == sock {
				srv.mu.Unlock()
				return fmt.Errorf("a closed socket stays in the index of %q", user)
			}
		}
	}
	srv.mu.Unlock()
	srv.subs.mu.RLock()
	defer srv.subs.mu.RUnlock()
	for _, sub := range srv.subs.list {
		sub.mu.RLock()
		_, in := sub.items[sock]
		inUser := false
		for _, m := range sub.byUser {
			if _, ok := m[sock]; ok {
				inUser = true
			}
		}
		sub.mu.RUnlock()
		if in || inUser {
			return fmt.Errorf("a closed socket stays subscribed to %v", sub.pattern)
		}
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if len(sock.subs) != 0 || len(sock.pending) != 0 {
		return fmt.Errorf("a closed socket keeps subscriptions %v (pending %d)", sock.subs, len(sock.pending))
	}
	return nil
}
