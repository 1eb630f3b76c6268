package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
)

// exampleServer starts a small nes server for the examples: route id "hello", the
// subscription /item/{id}, and direct auth that knows one user. It returns its ws:// URL.
func exampleServer() (nes *herald.Server, url string, stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		who := "world"
		if creds := herald.CredentialsFrom(r.Context()); creds != nil {
			who = creds.User
		}
		_, _ = io.WriteString(w, who+"!")
	})
	nes = herald.NewServer(mux, &herald.Options{
		Auth: &herald.AuthOptions{Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			switch r.Header.Get("Authorization") {
			case "":
				return nil, nil
			case "Bearer s3cret":
				return &herald.Credentials{User: "john"}, nil
			}
			return nil, herald.NewError(http.StatusUnauthorized, "Unknown token")
		}},
	})
	nes.Route("hello", http.MethodGet, "/h")
	nes.Subscription("/item/{id}", nil)
	hs := httptest.NewServer(nes)
	return nes, "ws" + strings.TrimPrefix(hs.URL, "http"), func() { nes.Close(); hs.Close() }
}

func Example() {
	_, url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil { // returns once the server has answered the hello
		log.Fatal(err)
	}
	res, err := c.Request(ctx, "hello") // a route id, or a path such as "/h"
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, string(res.Payload))
	// Output: 200 "world!"
}

func ExampleClient_Subscribe() {
	nes, url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, nil)
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}

	updates := make(chan client.Update)
	sub, err := c.Subscribe(ctx, "/item/5", func(u client.Update) { updates <- u })
	if err != nil {
		log.Fatal(err)
	}
	_ = nes.Publish("/item/5", map[string]any{"id": 5, "status": "complete"}, nil)
	u := <-updates
	fmt.Println(u.Path, string(u.Message))

	_, err = c.Subscribe(ctx, "/nothing/here", func(client.Update) {})
	fmt.Println(client.StatusCode(err), err)
	_ = sub.Unsubscribe(ctx) // this handler only; Client.Unsubscribe removes all of a path's
	// Output:
	// /item/5 {"id":5,"status":"complete"}
	// 404 client: server 404: Subscription not found (path /nothing/here)
}

func ExampleAuth() {
	_, url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	// Direct authentication: the hello carries the headers. For token authentication, fetch a
	// token with FetchToken and set Auth.Token; AuthFunc fetches a fresh one at each
	// (re)connection.
	c, _ := client.New(url, &client.Options{
		Auth: &client.Auth{Headers: map[string]string{"authorization": "Bearer s3cret"}},
	})
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	res, _ := c.Request(ctx, "hello")
	fmt.Println(string(res.Payload))

	bad, _ := client.New(url, &client.Options{
		Auth: &client.Auth{Headers: map[string]string{"authorization": "Bearer guess"}},
	})
	defer bad.Close()
	err := bad.Connect(ctx)
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, e.StatusCode, e.Message)
	}
	// Output:
	// "john!"
	// server 401 Unknown token
}

func ExampleOptions_events() {
	nes, url, stop := exampleServer()
	defer stop()
	events := make(chan string, 8)
	c, _ := client.New(url, &client.Options{
		Backoff: client.Backoff{Min: 10 * time.Millisecond, Max: time.Second},
		OnConnect: func(e client.ConnectEvent) {
			events <- fmt.Sprintf("connected over %s (reconnect: %v)", e.Transport, e.Reconnect)
		},
		OnDisconnect: func(e client.DisconnectEvent) {
			events <- fmt.Sprintf("disconnected (will reconnect: %v, requested: %v)", e.WillReconnect, e.Requested)
		},
		OnUpdate: func(message json.RawMessage) { events <- "update " + string(message) },
	})
	if err := c.Connect(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-events)

	_ = nes.Broadcast("hello, everyone", nil)
	fmt.Println(<-events)

	// The server drops the socket: the client reconnects by itself.
	nes.EachSocket(func(s *herald.Socket) bool { s.Disconnect(); return true })
	fmt.Println(<-events)
	fmt.Println(<-events)

	_ = c.Close()
	fmt.Println(<-events)
	// Output:
	// connected over websocket (reconnect: false)
	// update "hello, everyone"
	// disconnected (will reconnect: true, requested: false)
	// connected over websocket (reconnect: true)
	// disconnected (will reconnect: false, requested: true)
}
