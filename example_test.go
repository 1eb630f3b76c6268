package herald_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/websocket"
)

// direct dials without a proxy: the examples' servers are on loopback, which the environment's
// HTTP_PROXY would otherwise be asked for (see websocket.ProxyFromEnvironment).
var direct = &websocket.DialOptions{Proxy: websocket.NoProxy}

// A nes server wraps the application's own handler: nes requests are served by it in-process,
// by route id or by path, and everything that is not nes goes to it as usual.
func ExampleNewServer() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "world!")
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the request's JSON payload
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"created":%s}`, body)
	})
	srv := herald.NewServer(mux, nil)
	srv.Route("hello", "GET", "/h") // client.request('hello') in @hapi/nes
	hs := httptest.NewServer(srv)   // http.ListenAndServe(addr, srv) in a program
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(hs.URL, &client.Options{Dial: direct})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	res, err := c.Request(ctx, "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, string(res.Payload))
	res, err = c.Do(ctx, &client.Request{Method: "POST", Path: "/items", Payload: map[string]string{"name": "pen"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, string(res.Payload))
	_, err = c.Request(ctx, "/nowhere")
	fmt.Println(client.StatusCode(err))
	// Output:
	// 200 "world!"
	// 201 {"created":{"name":"pen"}}
	// 404
}

// Subscriptions take path parameters, and a filter decides for each socket what a
// publication delivers: here, drafts stay with the server and the id comes from the path.
func ExampleServer_Subscription() {
	srv := herald.NewServer(nil, nil)
	srv.Subscription("/item/{id}", &herald.SubscriptionOptions{
		Filter: func(path string, message any, info herald.FilterInfo) (bool, any) {
			m := message.(map[string]string)
			if m["status"] == "draft" {
				return false, nil
			}
			return true, map[string]string{"item": info.Params["id"], "status": m["status"]}
		},
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(hs.URL, &client.Options{Dial: direct})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	updates := make(chan string, 4)
	if _, err := c.Subscribe(ctx, "/item/5", func(u client.Update) { updates <- string(u.Message) }); err != nil {
		log.Fatal(err)
	}
	srv.Publish("/item/5", map[string]string{"status": "draft"}, nil)
	srv.Publish("/item/5", map[string]string{"status": "complete"}, nil)
	srv.Publish("/item/6", map[string]string{"status": "complete"}, nil) // nobody subscribed
	fmt.Println(<-updates)
	// Output:
	// {"item":"5","status":"complete"}
}

// Direct authentication: the client's hello carries headers, and Authenticate checks them as
// it would check an HTTP request's. Handlers find the credentials in the request's context.
func ExampleAuthOptions_direct() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", herald.CredentialsFrom(r.Context()).User)
	})
	srv := herald.NewServer(mux, &herald.Options{Auth: &herald.AuthOptions{
		Required: true,
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			user, pass, ok := r.BasicAuth()
			if !ok || pass != "secret" {
				return nil, herald.NewError(http.StatusUnauthorized, "Unknown user or wrong password")
			}
			return &herald.Credentials{User: user}, nil
		},
	}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pass := range []string{"wrong", "secret"} {
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("john:"+pass))
		c, err := client.New(hs.URL, &client.Options{Dial: direct,
			Auth: &client.Auth{Headers: map[string]string{"authorization": basic}}})
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			var e *client.Error
			errors.As(err, &e)
			fmt.Println(e.StatusCode, e.Message)
			c.Close()
			continue
		}
		res, err := c.Request(ctx, "/me")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(res.Payload))
		c.Close()
	}
	// Output:
	// 401 Unknown user or wrong password
	// "hello, john"
}

// Token authentication: the client fetches a sealed token from the auth endpoint over HTTP,
// with the application's own credentials, and presents it in its hello.
func ExampleAuthOptions_token() {
	srv := herald.NewServer(nil, &herald.Options{Auth: &herald.AuthOptions{
		Type:     "token",
		Password: "a password of at least 32 bytes, from a secret store",
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			if r.Header.Get("Authorization") != "Bearer session-of-ann" {
				return nil, nil // no credentials: {"status":"unauthenticated"}, as @hapi/nes
			}
			return &herald.Credentials{User: "ann", Scope: []string{"reader"}}, nil
		},
	}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	token, err := client.FetchToken(ctx, hs.URL+"/nes/auth",
		http.Header{"Authorization": {"Bearer session-of-ann"}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(hs.URL, &client.Options{Dial: direct, Auth: &client.Auth{Token: token}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Connect(ctx))
	srv.EachSocket(func(s *herald.Socket) bool {
		fmt.Println(s.Credentials().User, s.Credentials().Scope)
		return true
	})
	// Output:
	// <nil>
	// ann [reader]
}

// Cookie authentication: the auth endpoint sets a sealed cookie, which the WebSocket
// handshake (or the fallback's requests) then carries; the hello presents nothing.
func ExampleAuthOptions_cookie() {
	srv := herald.NewServer(nil, &herald.Options{Auth: &herald.AuthOptions{
		Type:           "cookie",
		Password:       "a password of at least 32 bytes, from a secret store",
		CookieInsecure: true, // this example serves plain HTTP; keep the default (Secure) in production
		Required:       true,
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			return &herald.Credentials{User: r.URL.Query().Get("user")}, nil // check a login session here
		},
	}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	if _, err := client.FetchToken(ctx, hs.URL+"/nes/auth?user=bob", nil, &http.Client{Jar: jar}); err != nil {
		log.Fatal(err)
	}
	c, err := client.New(hs.URL, &client.Options{Dial: direct, Jar: jar})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Connect(ctx))
	srv.EachSocket(func(s *herald.Socket) bool {
		fmt.Println(s.Credentials().User)
		return true
	})
	// Output:
	// <nil>
	// bob
}

// Custom messages (client.message in @hapi/nes) go to OnMessage, whose result is the reply;
// Socket.Send pushes a message to one client, and Broadcast to every client.
func ExampleOptions_onMessage() {
	srv := herald.NewServer(nil, &herald.Options{
		OnMessage: func(ctx context.Context, s *herald.Socket, message herald.RawMessage) (any, error) {
			var text string
			if err := json.Unmarshal(message, &text); err != nil {
				return nil, herald.NewError(http.StatusBadRequest, "send a string")
			}
			_ = s.Send("you said: " + text) // an update, outside the reply
			return strings.ToUpper(text), nil
		},
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pushed := make(chan string, 4)
	c, err := client.New(hs.URL, &client.Options{Dial: direct,
		OnUpdate: func(m json.RawMessage) { pushed <- string(m) }})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	reply, err := c.Message(ctx, "hi")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	fmt.Println(<-pushed)
	_ = srv.Broadcast("welcome, everyone", nil)
	fmt.Println(<-pushed)
	_, err = c.Message(ctx, 42)
	var e *client.Error
	fmt.Println(errors.As(err, &e) && e.StatusCode == http.StatusBadRequest)
	// Output:
	// "HI"
	// "you said: hi"
	// "welcome, everyone"
	// true
}

// Origins says which pages may connect, for every transport alike; an invalid entry is a
// misconfiguration that NewServer refuses, so entries from configuration are checked first.
func ExampleOptions_origins() {
	origins := []string{"https://app.example.com", "http://localhost:*", "https://example.com/login"}
	if err := websocket.ValidateOrigins(origins); err != nil {
		fmt.Println(err)
		origins = origins[:2]
	}
	srv := herald.NewServer(nil, &herald.Options{Origins: origins})
	defer srv.Close()

	hs := httptest.NewServer(srv)
	defer hs.Close()
	for _, origin := range []string{"http://localhost:5173", "https://evil.example"} {
		req, _ := http.NewRequest("POST", hs.URL+"/nes/poll", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(origin, res.StatusCode)
	}
	// Output:
	// websocket: invalid origin pattern "https://example.com/login": an origin is a scheme, a host and a port, with no path, query or user info (such as "https://example.com:8443")
	// http://localhost:5173 200
	// https://evil.example 403
}
