package heraldtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
)

// newApp is the application under test: a nes server around its handler, with a route and a
// subscription.
func newApp() *herald.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "world!")
	})
	nes := herald.NewServer(mux, nil)
	nes.Route("hello", http.MethodGet, "/h")
	nes.Subscription("/item/{id}", nil)
	return nes
}

func ExampleNewServer() {
	t := newExampleT() // in a test: its *testing.T
	defer t.finish()

	srv := heraldtest.NewServer(t, newApp())
	c := srv.Client(t, nil)
	res, err := c.Request(context.Background(), "hello")
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	fmt.Println(res.StatusCode, string(res.Payload))
	// Output: 200 "world!"
}

func ExampleSubscribe() {
	t := newExampleT() // in a test: its *testing.T
	defer t.finish()

	nes := newApp()
	srv := heraldtest.NewServer(t, nes)
	c := srv.Client(t, nil)

	updates := heraldtest.Subscribe(t, c, "/item/5")
	_ = nes.Publish("/item/5", map[string]any{"id": 5, "status": "pending"}, nil)
	_ = nes.Publish("/item/5", map[string]any{"id": 5, "status": "complete"}, nil)
	for _, u := range updates.Wait(t, 2) {
		fmt.Println(u.Path, string(u.Message))
	}
	updates.None(t, 50*time.Millisecond) // nothing more
	// Output:
	// /item/5 {"id":5,"status":"pending"}
	// /item/5 {"id":5,"status":"complete"}
}

func ExampleEvents() {
	t := newExampleT() // in a test: its *testing.T
	defer t.finish()

	nes := newApp()
	srv := heraldtest.NewServer(t, nes)
	var ev heraldtest.Events
	c := srv.Client(t, ev.Options(&client.Options{Backoff: client.Backoff{Min: 50 * time.Millisecond}}))
	updates := heraldtest.Subscribe(t, c, "/item/5")

	_ = nes.Broadcast("welcome!", nil)
	fmt.Println("pushed:", string(ev.Updates.Next(t)))

	srv.DisconnectAll() // the connection is lost; the client reconnects and resubscribes
	fmt.Println("will reconnect:", ev.Disconnects.Next(t).WillReconnect)
	for _, e := range ev.Connects.Wait(t, 2) {
		fmt.Println("reconnection:", e.Reconnect)
	}
	_ = nes.Publish("/item/5", map[string]int{"id": 5}, nil)
	fmt.Println("update:", string(updates.Next(t).Message))
	// Output:
	// pushed: "welcome!"
	// will reconnect: true
	// reconnection: false
	// reconnection: true
	// update: {"id":5}
}

func ExampleServer_Stop() {
	t := newExampleT() // in a test: its *testing.T
	defer t.finish()

	srv := heraldtest.NewServer(t, newApp())
	var ev heraldtest.Events
	c := srv.Client(t, ev.Options(&client.Options{Backoff: client.Backoff{Min: 50 * time.Millisecond}}))

	srv.Stop() // the server is gone: the connection is lost, and reconnecting fails
	ev.Disconnects.Next(t)
	_, err := c.Request(context.Background(), "hello")
	fmt.Println("disconnected while stopped:", errors.Is(err, client.ErrDisconnected))

	srv.Start(t) // back on the same port
	ev.Connects.Wait(t, 2)
	res, err := c.Request(context.Background(), "hello")
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	fmt.Println("after Start:", string(res.Payload))
	// Output:
	// disconnected while stopped: true
	// after Start: "world!"
}

func ExampleRecorder() {
	t := newExampleT() // in a test: its *testing.T
	defer t.finish()

	nes := newApp()
	srv := heraldtest.NewServer(t, nes)
	// A Recorder's Add is a callback or handler as it is.
	var pushes heraldtest.Recorder[json.RawMessage]
	pushes.Timeout = 2 * time.Second
	srv.Client(t, &client.Options{OnUpdate: pushes.Add})

	_ = nes.Broadcast(map[string]string{"news": "herald 1.0"}, nil)
	fmt.Println(string(pushes.Next(t)))
	// Output: {"news":"herald 1.0"}
}

// exampleT stands in, in the examples, for the *testing.T that a test has: it runs the
// cleanups when the example ends and panics on a failure.
type exampleT struct {
	testing.TB // nil: only the methods below are called
	cleanups   []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper()          {}
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// finish runs the cleanups, the last registered first, as a test's end does.
func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
