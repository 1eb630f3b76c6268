// Command nes is herald's nes demo: the examples of the @hapi/nes README in one server, for
// the official JavaScript client (or herald's Go client) to talk to.
//
//	go run ./examples/nes -addr 127.0.0.1:8000 [-heartbeat-interval 15s] [-heartbeat-timeout 5s]
//
// Its first line on standard output is "listening on http://ADDR". It serves:
//
//	GET  /h           route id "hello": "world!"
//	GET  /auth/h      route id "authhello": "Hello John Doe", with Basic john:secret
//	POST /echo        its JSON payload back
//	POST /publish     {path, message}: publishes, answers {"ok":true}
//	POST /broadcast   {message}: broadcasts, answers {"ok":true}
//	POST /drop        over nes: answers {"ok":true}, then closes that socket
//	GET  /boom        500, for error-shape tests; "/wild" is route id "wild" for every method
//
// Subscriptions /item/{id} and /items (authentication optional; a publication whose updater
// is the socket's own username is not sent back to it); custom messages are answered with
// {"echo": message}; direct authentication with Basic, optional.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

type config struct {
	heartbeatInterval time.Duration
	heartbeatTimeout  time.Duration
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	var cfg config
	flag.DurationVar(&cfg.heartbeatInterval, "heartbeat-interval", 15*time.Second, "how often the server pings every socket")
	flag.DurationVar(&cfg.heartbeatTimeout, "heartbeat-timeout", 5*time.Second, "how long a socket may stay silent after a ping")
	flag.Parse()
	if err := run(*addr, cfg); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, cfg config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	nes := newServer(cfg)
	srv := &http.Server{Handler: nes, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(nes.Close)
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// john is the demo's one account.
var john = struct{ username, password, id, name string }{"john", "secret", "2133d32a", "John Doe"}

// basicAuth checks HTTP Basic credentials, as hapi's @hapi/basic strategy does.
func basicAuth(r *http.Request) (*herald.Credentials, error) {
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Basic") {
		return nil, nil // no credentials: authentication is optional
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	username, password, ok := strings.Cut(string(raw), ":")
	switch {
	case err != nil || !ok:
		return nil, herald.NewError(http.StatusBadRequest, "Bad header internal syntax")
	case username == "":
		return nil, herald.NewError(http.StatusUnauthorized, "HTTP authentication header missing username")
	case username != john.username || password != john.password:
		return nil, herald.NewError(http.StatusUnauthorized, "Bad username or password")
	}
	return &herald.Credentials{User: john.username, Data: map[string]any{
		"id": john.id, "name": john.name, "username": john.username}}, nil
}

// newServer builds the demo's nes server around its routes.
func newServer(cfg config) *herald.Server {
	mux := http.NewServeMux()
	nes := herald.NewServer(mux, &herald.Options{
		Auth:      &herald.AuthOptions{Type: "direct", Authenticate: basicAuth},
		Heartbeat: &herald.Heartbeat{Interval: cfg.heartbeatInterval, Timeout: cfg.heartbeatTimeout},
		OnMessage: func(ctx context.Context, s *herald.Socket, message herald.RawMessage) (any, error) {
			if message == nil {
				return map[string]any{}, nil // as JavaScript drops {echo: undefined}
			}
			return map[string]json.RawMessage{"echo": message}, nil
		},
		WebSocket: &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}},
	})

	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "world!")
	})
	nes.Route("hello", http.MethodGet, "/h")

	mux.Handle("GET /auth/h", nes.Authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creds := herald.CredentialsFrom(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, "Hello %v", creds.Data["name"])
	})))
	nes.Route("authhello", http.MethodGet, "/auth/h")

	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err == nil && len(body) == 0 {
			w.WriteHeader(http.StatusNoContent) // hapi answers a null payload with 204
			return
		}
		if err != nil || !json.Valid(body) {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Invalid request payload JSON format"})
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	})

	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Path    string          `json:"path"`
			Message json.RawMessage `json:"message"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Path == "" {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Expected {path, message}"})
			return
		}
		if err := nes.Publish(in.Path, orNull(in.Message), nil); err != nil {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": err.Error()})
			return
		}
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Message json.RawMessage `json:"message"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		_ = nes.Broadcast(orNull(in.Message), nil)
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		s := herald.SocketFrom(r.Context())
		if s == nil {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Only over nes"})
			return
		}
		s.Disconnect() // after this reply goes out
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/wild", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "wild")
	})
	nes.Route("wild", "*", "/wild")

	skipOwnUpdates := func(path string, message any, info herald.FilterInfo) (bool, any) {
		if info.Credentials == nil {
			return true, nil // anonymous sockets get everything
		}
		var m struct {
			Updater string `json:"updater"`
		}
		if raw, ok := message.(json.RawMessage); ok {
			_ = json.Unmarshal(raw, &m)
		}
		if m.Updater != "" && m.Updater == info.Credentials.Data["username"] {
			return false, nil
		}
		return true, nil
	}
	for _, path := range []string{"/item/{id}", "/items"} {
		nes.Subscription(path, &herald.SubscriptionOptions{
			Filter: skipOwnUpdates,
			Auth:   &herald.SubscriptionAuth{Mode: "optional"},
		})
	}
	return nes
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// orNull keeps an absent JSON value from turning into invalid JSON.
func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
