// Package herald is a nes server for net/http: it speaks the nes protocol, version 2 (the
// protocol of @hapi/nes 14, the 2.4.x series), so that the official JavaScript client works
// against it unchanged, and brings nes's requests, subscriptions, publish, broadcast and
// authentication to any http.Handler.
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "world!") })
//	srv := herald.NewServer(mux, &herald.Options{})
//	srv.Route("hello", "GET", "/h")             // client.request("hello")
//	srv.Subscription("/item/{id}", nil)         // client.subscribe("/item/5", handler)
//	srv.Publish("/item/5", map[string]any{"id": 5, "status": "complete"}, nil)
//	http.ListenAndServe(addr, srv)               // nes over WebSocket, the auth endpoint, else mux
//
// # Requests
//
// A nes request (method, path, headers, JSON payload) is served in-process by the application's
// own handler as an http.Request whose context carries the socket (SocketFrom) and its
// credentials (CredentialsFrom); the status, the payload (JSON bodies as JSON, others as
// strings, errors in the {statusCode, error, message} shape) and the allowed headers go back.
// Route gives routes ids; Server.Authenticated wraps a handler so that nes sockets'
// credentials count as authentication.
//
// # Subscriptions
//
// Subscription paths use hapi's syntax ("/item/{id}", "/files/{path*}", "/a/{b?}"). Publish
// encodes once and fans out through each subscription's filter; Broadcast reaches every
// socket. Each socket has a bounded send queue: publishing never waits on a slow client,
// and a socket past its bound is disconnected (Options.SendQueueLimit).
//
// # Authentication
//
// AuthOptions supports nes's three types: direct (credentials in the hello), token (sealed,
// expiring tokens from an endpoint) and cookie (a sealed cookie sent with the handshake).
// A hello that fails is answered, then the socket is closed (the reference leaves it open for
// its client to hang up). AuthOptions.Verify re-checks credentials at every hello and reauth,
// before messages and before deliveries; Server.RevokeUser cuts a user off at once. The token
// and cookie endpoint answers a request without credentials 200 {"status":"unauthenticated"},
// as @hapi/nes does (see AuthOptions.Authenticate).
//
// # Origins
//
// Browsers' requests (those with an Origin header) must come from the server's own host or
// match Options.Origins ("https://app.example.com", "http://localhost:*", "*.example.com",
// ...), one rule for the WebSocket, the fallback's endpoints and the auth endpoint. A refusal
// is a 403 whose body names the option, and a line at Info level on Options.Logger: a page
// itself learns nothing but a failed connection.
//
// # Liveness
//
// A socket must say hello within Options.HelloTimeout (5 s), whatever the auth settings, or it
// is closed. After that, one
// heartbeat timer pings every socket each interval and drops those that stay silent; the client
// does the same with the interval the hello reply gives it.
//
// # Several nodes
//
// Options.Broker links servers behind one load balancer (no sticky sessions needed) through
// a message engine: package broker/redis (one server, Sentinel or Cluster) or broker/nats.
// Publish, Broadcast, BroadcastGroup, Revoke, RevokeUser and DisconnectUser then reach the
// sockets of every node, and Sockets and Presence survey every node, naming those that did
// not answer in time (Missing). What is promised:
//
//   - At most once across nodes: a message is delivered once or, when a broker link is lost,
//     not at all (nothing is buffered or replayed by the engine's publish/subscribe).
//   - One order per path: publications on one path reach every socket in the order the
//     engine took them. Different paths, users and groups have no order between them.
//   - Filters (SubscriptionOptions.Filter) and PublishOptions.User run on the node that
//     holds the socket, with the message decoded from JSON.
//   - Fail fast: while the link is down, publishing, broadcasting and revoking return an
//     error wrapping broker.ErrUnavailable at once, a sub that needs a new topic is answered
//     503, and readiness fails. Nothing waits or queues without bound.
//   - Options.CloseOnDiscontinuity closes with WebSocket status 1012 the sockets that may
//     have missed messages while the link was down, so that their clients reconnect and
//     subscribe again; without it, Server.Discontinuities counts the losses.
//   - The fallback (EventSource and long-polling clients) needs no sticky sessions when
//     Options.Fallback.Key is set, the same on every node: a request landing on another node
//     is forwarded to the session's node through the broker.
//
// A node joins one engine topic per concrete path that its sockets subscribe to (once the
// subscription is authorized), per user and per group: a client holds at most
// Options.MaxSubscriptions path topics per socket, and a topic left stays subscribed for
// broker.NodeOptions.Linger (1 s) in case it is joined again. Server.Node gives the application the server's own link for its own topics and
// requests (with names of its own, such as "app:"), without a second connection.
//
// # Transports
//
// Transport is the one interface the nes layer talks through. A client whose network blocks
// WebSocket gets the same nes over an EventSource stream down and HTTP POSTs up, or over
// long-polls: the server answers them beside its WebSocket, at its path followed by
// /nes/sse, /nes/send and /nes/poll (package fallback; Options.Fallback, Options.NoFallback).
// herald's Go client (package client) moves to them by itself, and back to WebSocket at its
// next connection.
package herald
