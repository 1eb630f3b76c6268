// Package fallback carries whole text messages both ways between a server and a client whose
// network will not carry WebSocket: an EventSource stream (or long-polls) down, HTTP POSTs up.
// It knows nothing of what the messages mean: herald's nes server rides on it through its
// Transport interface, unchanged, and a browser can present it to the official @hapi/nes
// client as a WebSocket.
//
// A Server holds sessions and answers three endpoints under a base path (herald's nes server
// mounts them at its path followed by /nes: /nes/sse, /nes/send, /nes/poll). Dial is the Go
// client's side. PROTOCOL.md beside this file is the whole HTTP surface, for writing another
// client.
//
// # The session
//
// A session outlives the requests that carry it. Every message down has a sequence number and
// stays in a bounded buffer (Options.BufferMessages, BufferBytes) until the client confirms it;
// a stream that drops is resumed (the browser's own EventSource reconnection does it, with the
// Last-Event-ID header) with every message the client missed, within Options.Grace. Beyond that
// the client gets a reset event and a new session, never a silent gap. Messages up travel in
// numbered batches, one POST at a time: the session applies them strictly in order and each
// once, so that a retried POST is safe.
//
// A session is named by a ticket: 128 random bits and the node that holds it, signed
// (HMAC-SHA-256) so that it can be neither guessed nor altered, and bound to the origin and
// cookie it was opened with. It travels in the Herald-Ticket header and in event ids, never in
// a URL, and it is never the public nes socket id.
//
// # Several nodes
//
// With Options.Broker (a broker.Node shared by the nodes) and the same Options.Key on every node,
// clients need no sticky sessions: a POST or a poll that reaches a node other than the session's
// is forwarded to it, and a stream resumed on another node is relayed from it, each through the
// broker. While the session's node lives, the client sees no difference; when it dies, its
// clients are told (404 to a POST, a reset to a resumed stream) and start new sessions.
// PROTOCOL.md, "Several nodes", has the details.
//
// # Proxies
//
// Streams carry Cache-Control: no-cache, no-transform and X-Accel-Buffering: no, comments as
// keep-alives (Options.KeepAlive), a retry time drawn at random per stream (so that clients of
// a restarted server do not come back in step), and end on purpose after Options.MaxStreamAge
// or MaxStreamBytes, for load balancers that cap response lifetimes; the client resumes at
// once. A proxy that buffers streams whatever the headers say gets long-polling, which shares
// the same session buffer. Both work over HTTP/1.1 and HTTP/2.
//
// # Cross-site requests
//
// The origin rule of the WebSocket (Options.CheckOrigin) applies to every endpoint. POSTs must
// be application/json (what a cross-site form can send is refused with 415) and pass
// net/http's CrossOriginProtection; allowed cross-origin requests get CORS answers with
// credentials, and preflights are answered.
package fallback
