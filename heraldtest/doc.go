// Package heraldtest runs a herald nes server inside a test and connects clients to it, as
// net/http/httptest does for HTTP handlers, with recorders that wait for what arrives on the
// clients' goroutines: subscription updates, pushes, connection events.
//
//	func TestItems(t *testing.T) {
//		nes := herald.NewServer(app, nil) // the application's handler, as in production
//		nes.Subscription("/item/{id}", nil)
//		srv := heraldtest.NewServer(t, nes) // ws://127.0.0.1:PORT, closed when the test ends
//
//		c := srv.Client(t, nil) // connected; closed when the test ends
//		updates := heraldtest.Subscribe(t, c, "/item/5")
//		nes.Publish("/item/5", map[string]int{"id": 5}, nil)
//		u := updates.Next(t) // waits; fails the test after DefaultTimeout
//		if string(u.Message) != `{"id":5}` {
//			t.Errorf("got %s", u.Message)
//		}
//		updates.None(t, 100*time.Millisecond) // and nothing more
//	}
//
// # Servers
//
// [NewServer] serves a *herald.Server on a loopback port until the test ends. [Server.Client]
// makes connected clients (directly, whatever proxy the environment names).
// [Server.DisconnectAll] drops every socket, and [Server.Stop] and [Server.Start] take the
// server down and bring it back on the same port, for tests of what an application does while
// its connection is lost and after it has come back.
//
// # Waiting
//
// A [Recorder] collects values that arrive on other goroutines and hands them to the test in
// order: Next waits for one, Wait for several, None checks that nothing comes. [Subscribe]
// returns one for a subscription's updates, and [Events] one for each client callback
// (OnConnect, OnDisconnect, OnReconnect, OnHeartbeatTimeout, OnUpdate, OnError). Its Add
// method is a handler as it is: rec.Add can be given to client.Client.Subscribe or set as any
// callback of the matching type.
//
// Waits fail the test after [DefaultTimeout] (10 s) unless Recorder.Timeout says otherwise:
// a passing test does not wait that long, since a wait ends as soon as its value arrives.
//
// Every function that takes a testing.TB fails the test through it (t.Fatalf), so call it
// from the test's goroutine.
package heraldtest
