// Package client is a Go client for the nes protocol (version 2, as @hapi/nes 14 speaks it):
// it talks to herald's nes server and, unchanged, to hapi's with the @hapi/nes plugin.
//
//	c, err := client.New("wss://example.com", &client.Options{
//		Auth: &client.Auth{Headers: map[string]string{"authorization": "Basic am9objpzZWNyZXQ="}},
//		OnDisconnect: func(e client.DisconnectEvent) { log.Println("disconnected:", e.Err, "reconnecting:", e.WillReconnect) },
//	})
//	if err := c.Connect(ctx); err != nil { ... }        // returns when the server answered the hello
//	defer c.Close()
//	res, err := c.Request(ctx, "hello")                   // a route id, or a path such as "/h"
//	sub, err := c.Subscribe(ctx, "/item/5", func(u client.Update) { ... })
//
// # Connecting
//
// The connection is a WebSocket opened with [websocket.Dial], so every [websocket.DialOptions]
// setting applies (Options.Dial): TLS, HTTP, HTTPS and SOCKS5 proxies (by default those the
// environment names), extra handshake headers, permessage-deflate (offered by default). Where
// WebSocket does not get through, the client moves by itself to herald's fallback (package
// fallback): an event stream down and POSTs up, then long-polling (Options.Transports), with the
// same proxy, TLS settings, headers and cookies. Connect counts the client as connected once the
// server has answered its hello, not at the handshake: a proxy that lets the upgrade through and
// then drops the frames is a failed connection, and the next transport is tried.
//
// # Staying connected
//
// Once connected, a lost connection is re-established by itself: after a wait drawn uniformly
// from [0, min(Max, Min·2ⁿ)] (Options.Backoff), so that clients of a restarted server come
// back spread out however long the outage; the exponent starts again only after a connection
// has stayed up Backoff.ResetAfter. There is no lifetime budget of attempts (Options.MaxRetries
// bounds one outage's). Every reconnection's hello presents the auth again (Options.AuthFunc
// is asked for fresh credentials each time) and resubscribes every path; a path the server
// now refuses is dropped, its handlers hear Revoked with the refusal, and the client carries on.
// A hello the server refuses for good (a 4xx such as 401 with a fixed token) ends the
// reconnection: OnDisconnect hears it with WillReconnect false.
//
// The server's heartbeat (the interval and timeout its hello reply announces) is watched: a
// server silent for longer is taken for lost (OnHeartbeatTimeout), and the client reconnects.
// Calls waiting for a reply when the connection goes fail at once with ErrDisconnected.
//
// # Callbacks and handlers
//
// Events (Options.OnConnect, OnDisconnect, OnReconnect, OnHeartbeatTimeout, OnUpdate, OnError)
// run one at a time, in order, on a goroutine of the client's; each subscription handler has a
// goroutine and a queue of its own. None runs on the goroutine that reads the connection, so a
// slow callback never holds up replies, pings or other subscriptions. A handler that falls
// Options.HandlerQueue updates behind loses updates (OnError hears ErrHandlerQueueFull).
// Callbacks may call any method of the Client, Close included.
//
// # Errors
//
// Calls return an *Error whose Kind says what went wrong (KindServer with the status code,
// payload and headers; KindDisconnect, KindTimeout, KindProtocol, KindTransport, KindUser);
// errors.Is matches ErrDisconnected and ErrTimeout by kind, and errors.As reaches the
// transport's own errors (a *websocket.HandshakeError, a *websocket.ProxyError). When no
// transport reaches the server, Connect's error names each one's failure, and errors.Is and
// errors.As look into all of them (errors.Is(err, syscall.ECONNREFUSED): nothing listens).
package client
