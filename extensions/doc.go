// Package extensions negotiates WebSocket extensions (RFC 6455 §9), in the manner of
// faye-websocket's websocket-extensions: it parses and formats the Sec-WebSocket-Extensions
// header, lets each Extension accept or decline the peer's offers, keeps extensions from
// claiming the same reserved bit, and chains the negotiated sessions so that each transforms
// whole messages on their way out (in the negotiated order) and back in (in reverse).
//
// Package websocket uses it on both sides: list extensions in websocket.Options.Extensions
// (server) or websocket.DialOptions.Extensions (client). Package deflate provides
// permessage-deflate (RFC 7692).
//
// # Writing an extension
//
// An Extension negotiates; a Session, one per connection, transforms messages. A session
// marks the messages it transformed with its reserved bits (Message.RSV). Negotiated.Decode
// passes an incoming message to every session, so a session leaves alone those without its
// bits set, and clears its bits from those it decodes (package websocket fails a message
// whose bits no session cleared).
// Sessions are used by one goroutine at a time for Encode and one for Decode.
package extensions
