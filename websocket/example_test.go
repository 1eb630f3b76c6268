package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/herald-go/herald/websocket"
)

// Upgrade works in any net/http handler: here, an echo server that also serves plain HTTP.
func ExampleUpgrade() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocket(r) {
			fmt.Fprintln(w, "Hello")
			return
		}
		ws, err := websocket.Upgrade(w, r, &websocket.Options{
			Protocols:    []string{"irc", "amqp"},
			MaxLength:    1 << 20,
			PingInterval: 15 * time.Second,
		})
		if err != nil {
			return // Upgrade has answered the request
		}
		defer ws.Close(websocket.StatusNormalClosure, "bye")
		for {
			typ, data, err := ws.Read(r.Context())
			if err != nil {
				log.Printf("closed: %v (code %v)", err, websocket.CloseStatus(err))
				return
			}
			if err := ws.Write(r.Context(), typ, data); err != nil {
				return
			}
		}
	})
}

// Handler serves one route: WebSocket requests are upgraded after Verify accepts them, and the
// rest go to Fallback.
func ExampleHandler() {
	reg := &websocket.Registry{}
	mux := http.NewServeMux()
	mux.Handle("/chat", &websocket.Handler{
		Accept: func(ws *websocket.Conn) {
			_ = ws.Write(context.Background(), websocket.MessageText, []byte("welcome"))
			_, _, _ = ws.Read(context.Background())
		},
		Options: &websocket.Options{
			Registry: reg,
			Verify: func(r *http.Request) error {
				if r.URL.Query().Get("token") != "secret" {
					return &websocket.HTTPError{Status: http.StatusUnauthorized, Message: "bad token"}
				}
				return nil
			},
		},
		Fallback: http.NotFoundHandler(),
	})
	srv := &http.Server{Addr: "127.0.0.1:8000", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(reg.Shutdown) // closes every WebSocket with 1001 on srv.Shutdown
	_ = srv
}

// CloseStatus tells how the peer closed the connection.
func ExampleCloseStatus() {
	err := fmt.Errorf("reading: %w", &websocket.CloseError{Code: 4001, Reason: "bye"})
	fmt.Println(websocket.CloseStatus(err))
	fmt.Println(websocket.CloseStatus(errors.New("something else")))

	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Printf("%d %q\n", ce.Code, ce.Reason)
	}
	// Output:
	// 4001
	// -1
	// 4001 "bye"
}
