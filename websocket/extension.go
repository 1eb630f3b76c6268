package websocket

// Extension is a WebSocket extension (RFC 6455 §9) that a connection can negotiate.
//
// Not done yet: the negotiation and the per-message transforms arrive with package extensions
// (permessage-deflate); until then Upgrade negotiates no extension and any frame with a
// reserved bit set fails the connection with 1002.
type Extension interface {
	// Name is the extension's token in Sec-WebSocket-Extensions, such as
	// "permessage-deflate".
	Name() string
}
