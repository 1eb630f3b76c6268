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
// marks the messages it transformed with its reserved bits (Message.RSV) and is asked to
// decode only messages that arrive with its bits set. Sessions are used by one goroutine at a
// time for Encode and one for Decode.
package extensions
