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
// # Client
//
// Dial opens a connection to a ws:// or wss:// URL and returns the same Conn, with the
// handshake response (also when the handshake is refused: *HandshakeError). It goes through
// HTTP and HTTPS proxies (CONNECT, Basic credentials from the proxy URL, custom CONNECT
// headers) and SOCKS5, chosen by DialOptions.Proxy, a function as in http.Transport; by
// default the environment's HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY, with ws mapped to
// http and wss to https. permessage-deflate is offered by default.
//
//	ws, resp, err := websocket.Dial(ctx, "wss://example.com/chat", &websocket.DialOptions{
//		Proxy: websocket.ProxyURL("http://user:pass@proxy:3128"),
//	})
//
// # Compression
//
// List extensions in Options.Extensions (server) or DialOptions.Extensions (client):
// deflate.New from package extensions/deflate gives permessage-deflate. MaxLength bounds the
// decompressed size. PreparedMessage compresses a broadcast once for every connection that
// shares stateless settings; WriteUncompressed sends data that is compressed already.
//
// # Concurrency
//
// One goroutine reads (Read, ReadAppend, Reader, or NetConn's Read); any number write (Write, Writer,
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
// 426 with Sec-WebSocket-Version: 13, a foreign Origin 403 (Options.Origins lists the pages
// of other origins that may connect; ValidateOrigins checks such a list).
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
// bytes arrive and returned when they have been consumed. Read and Reader wait in shallow
// frames, so a goroutine that does little else parks on the runtime's smallest stack.
// ReadAppend reads into a buffer the caller reuses, allocating nothing per message; Read
// returns a new slice each time, which the caller may keep. Serve
// each connection on its own goroutine and return from the handler (Handler does): net/http
// then frees what it holds for the request. Writes above 1 KiB go straight from the caller's
// slice to the socket with one vectored write.
//
// # Idle mode
//
// Most connections of a push server are idle, and with Read an idle connection still holds a
// goroutine (about 7 KiB with its stack and state). Conn.Serve is the callback form of
// reading: Events.OnMessage gets each message, Events.OnClose the end. With
// Events.IdleMode, on Linux, Serve takes the socket out of Go's poller onto herald's own
// epoll loop (package internal/poller): a connection with nothing to read has no goroutine
// and no buffer, and its deadlines and automatic pings are entries in one shared timer heap;
// when bytes arrive a pooled worker goroutine reads and delivers them, then parks the
// connection again. An idle connection then costs about 2.3 KiB of the process's memory
// instead of about 7 (measured at 10,000 connections beside nbio's: cd bench && go run ./idle).
//
//	c, err := websocket.Upgrade(w, r, opts)
//	if err != nil {
//		return
//	}
//	c.Serve(&websocket.Events{IdleMode: true, OnMessage: onMessage, OnClose: onClose})
//
// Everything else is as with Read: Write, Ping and Close from any goroutine, the closing
// handshake, FirstFrameTimeout, MaxLength, automatic pings, deflate. The trade-off: the
// message data is valid only during OnMessage (the buffer goes back to a pool); the first
// message after a pause costs a hand-over to a worker goroutine (its latency is not measured
// on its own: in bench/idle's echo, where every message comes after a pause, CPU per message
// is a few percent above goroutine mode); one goroutine waits on the epoll instance for the
// whole process, in Go's own poller. A peer that stops halfway
// through a frame keeps its worker waiting for the rest (bounded by FirstFrameTimeout for the
// first frame), as a goroutine would wait. TLS connections, client connections through a
// proxy, and other platforms cannot be polled this way: Serve then keeps a goroutine per
// connection, with the same callbacks (Conn.IdleMode reports which). Code that calls Read
// needs its goroutine and gains nothing from idle mode.
package websocket
