package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/herald-go/herald/websocket"
)

// Dial connects to a server, here an echo server in the same program, and shows the
// handshake response, the negotiated subprotocol and one message there and back.
func ExampleDial() {
	srv := httptest.NewServer(&websocket.Handler{
		Options: &websocket.Options{Protocols: []string{"irc", "amqp"}},
		Accept: func(ws *websocket.Conn) {
			typ, data, err := ws.Read(context.Background())
			if err == nil {
				_ = ws.Write(context.Background(), typ, data)
				_, _, _ = ws.Read(context.Background()) // until the client closes
			}
		},
	})
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/chat"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Protocols: []string{"amqp", "irc"},
		Header:    http.Header{"Origin": {srv.URL}},
		Proxy:     websocket.NoProxy, // the default reads HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY
	})
	if err != nil {
		var he *websocket.HandshakeError
		if errors.As(err, &he) {
			log.Fatalf("refused with %d", resp.StatusCode)
		}
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, ws.Protocol())

	if err := ws.Write(ctx, websocket.MessageText, []byte("Hello")); err != nil {
		log.Fatal(err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	_ = ws.Close(websocket.StatusNormalClosure, "bye")
	// Output:
	// 101 amqp
	// Hello
}

// ProxyURL sends every handshake through one proxy: HTTP CONNECT with Basic credentials here,
// with an extra CONNECT header and, for an https:// proxy, its own TLS settings.
func ExampleProxyURL() {
	ws, _, err := websocket.Dial(context.Background(), "wss://chat.example/", &websocket.DialOptions{
		Proxy:              websocket.ProxyURL("http://user:pass@proxy.example:3128"),
		ProxyConnectHeader: http.Header{"X-Tenant": {"42"}},
		// For "https://proxy.example:443": ProxyTLS: &tls.Config{RootCAs: proxyRoots},
		// For SOCKS5: websocket.ProxyURL("socks5://user:pass@proxy.example:1080").
	})
	if err != nil {
		var pe *websocket.ProxyError
		if errors.As(err, &pe) && pe.Response != nil && pe.Response.StatusCode == http.StatusProxyAuthRequired {
			log.Fatal("the proxy wants other credentials")
		}
		log.Fatal(err)
	}
	defer ws.Close(websocket.StatusNormalClosure, "")
}

// ProxyEnvironment is the environment's proxy settings as a value: the proxy depends on the
// scheme, NO_PROXY sends some hosts direct.
func ExampleProxyEnvironment() {
	env := websocket.ProxyEnvironment{
		HTTPProxy:  "http://proxy.example:3128",
		HTTPSProxy: "https://secure-proxy.example",
		NoProxy:    "internal.example, 10.0.0.0/8",
	}
	for _, u := range []string{"ws://chat.example/", "wss://chat.example/", "wss://api.internal.example/", "ws://10.1.2.3:8080/"} {
		target, _ := url.Parse(u)
		req := &http.Request{URL: target}
		proxy, _ := env.Proxy(req)
		fmt.Println(u, "->", proxy)
	}
	// Output:
	// ws://chat.example/ -> http://proxy.example:3128
	// wss://chat.example/ -> https://secure-proxy.example
	// wss://api.internal.example/ -> <nil>
	// ws://10.1.2.3:8080/ -> <nil>
}

// ReadAppend reads each message into one buffer that the loop reuses: after the first
// messages have grown it, reading allocates nothing. Here the server echoes three messages
// and the client checks them.
func ExampleConn_ReadAppend() {
	srv := httptest.NewServer(&websocket.Handler{
		Accept: func(ws *websocket.Conn) {
			ctx := context.Background()
			var buf []byte
			for {
				typ, msg, err := ws.ReadAppend(ctx, buf[:0])
				if err != nil {
					return // the client closed
				}
				if err := ws.Write(ctx, typ, msg); err != nil {
					return
				}
				buf = msg // keep the grown buffer for the next message
			}
		},
	})
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Proxy: websocket.NoProxy})
	if err != nil {
		log.Fatal(err)
	}
	var buf []byte
	for _, s := range []string{"one", "two", "three"} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
			log.Fatal(err)
		}
		var msg []byte
		if _, msg, err = ws.ReadAppend(ctx, buf[:0]); err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
		buf = msg
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")
	// Output:
	// one
	// two
	// three
}
