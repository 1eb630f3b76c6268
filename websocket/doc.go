// Package websocket is a WebSocket (RFC 6455) for plain net/http, in the style of
// faye-websocket: hand a request to Upgrade and get back a connection object that reads and
// writes whole messages, pings with pong confirmation, closes with codes and reasons, selects a
// subprotocol and enforces a maximum message length.
//
// # Server
//
//	if websocket.IsWebSocket(r) {
//		ws, err := websocket.Upgrade(w, r, &websocket.Options{Protocols: []string{"irc", "amqp"}})
//		if err != nil {
//			return // Upgrade has answered the request (400, 403, 426 ...)
//		}
//		typ, data, err := ws.Read(ctx)
//		err = ws.Write(ctx, typ, data)
//		ws.Close(websocket.StatusNormalClosure, "bye")
//	}
//
// Handler is the same per route, with a Verify hook that refuses upgrades before anything is
// allocated and a fallback for other requests. Registry closes every connection with 1001
// when the server shuts down (http.Server.Shutdown does not know hijacked connections).
//
// # Concurrency
//
// One goroutine reads (Read, Reader, or NetConn's Read); any number write (Write, Writer,
// Ping, Close). Control frames are answered by the reader, so a connection must be read for
// pongs and the closing handshake to complete. Writes are serialized by the connection and
// bounded by Options.WriteQueueLimit; a context ends a call, not the connection (see Conn).
//
// # Errors and close codes
//
// When the peer closes, Read returns a *CloseError carrying its code and reason (CloseStatus
// extracts the code; 1006 means the connection dropped without a close frame). When the peer
// breaks the protocol the connection is failed with the code RFC 6455 names (1002 for framing
// violations, 1007 for invalid UTF-8, checked as the bytes arrive, 1009 above MaxLength) and
// Read returns a *ProtocolError. Handshakes that are malformed get 400, an unsupported version
// 426 with Sec-WebSocket-Version: 13, a foreign Origin 403.
//
// # Deployment
//
// Set http.Server.ReadHeaderTimeout: net/http reads the handshake request before Upgrade runs.
// WebSocket needs HTTP/1.1; net/http does not implement WebSocket over HTTP/2 (RFC 8441), so
// serve WebSocket routes where HTTP/1.1 is offered (a TLS server offers both by ALPN and
// browsers use HTTP/1.1 for WebSocket).
//
// # Memory
//
// On plain TCP an idle connection holds no read buffer: buffers are borrowed from a pool when
// bytes arrive and returned when they have been consumed. Writes go straight from the caller's
// slice to the socket with one vectored write.
package websocket
