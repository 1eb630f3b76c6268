package extensions

import (
	"errors"
	"fmt"
)

// RSV is a set of the frame header's reserved bits, as an extension claims them.
type RSV byte

// The three reserved bits of a frame header.
const (
	RSV1 RSV = 1 << 2
	RSV2 RSV = 1 << 1
	RSV3 RSV = 1 << 0
)

// Param is one extension parameter. A parameter without a value has Value "".
type Param struct {
	Name  string
	Value string
}

// Message is a whole data message passing through a Session.
type Message struct {
	// Text reports a text message (opcode 1) rather than binary (opcode 2).
	Text bool
	// RSV holds the reserved bits of the message's first frame: on the way in, as received;
	// on the way out, the bits the sessions set.
	RSV RSV
	// Data is the payload. Sessions replace it with their output.
	Data []byte
	// Limit is, for Decode, the most bytes Data may hold once decoded; past it Decode returns
	// an error wrapping ErrTooBig.
	Limit int64
	// Raw asks Encode to leave the message as it is (already-compressed data, say).
	Raw bool
	// Scratch is, for Encode, a buffer the caller owns and recycles after the message is
	// written: a session may build its output in Scratch[:0] and set Data to it.
	Scratch []byte
}

// ErrTooBig is wrapped by Decode errors for messages that decode to more than Message.Limit.
var ErrTooBig = errors.New("extensions: decoded message exceeds the length limit")

// Extension is one extension a server or client can negotiate.
type Extension interface {
	// Name is the extension's token, such as "permessage-deflate".
	Name() string
	// RSV is the set of reserved bits the extension's sessions may set.
	RSV() RSV
	// Accept is the server's answer to one offer of this extension from the client: the
	// response parameters and the connection's session, or ok == false to decline this offer
	// (the client's next offer of the same extension, if any, is tried next).
	Accept(offer []Param) (response []Param, s Session, ok bool)
	// Offer is what a client offers.
	Offer() []Param
	// Activate is the client's check of the server's response to its offer: the connection's
	// session, or an error that fails the connection.
	Activate(response []Param) (Session, error)
}

// Session is one connection's state of a negotiated extension.
type Session interface {
	// Encode transforms an outgoing message, setting the reserved bits it uses in m.RSV.
	Encode(m *Message) error
	// Decode reverses the peer's Encode, within m.Limit, for a message that arrived with some
	// of the session's reserved bits set, and clears those bits from m.RSV. It may be given
	// messages without them (Negotiated.Decode calls every session): it leaves those as they
	// are.
	Decode(m *Message) error
}

// SharedEncoder is implemented by sessions whose Encode output depends only on the message
// and on settings that other sessions may share (no per-connection state such as context
// takeover). Key names those settings: sessions with equal keys encode a message to the same
// bytes, so a broadcast can encode it once for all of them. ok is false when the session
// keeps state between messages.
type SharedEncoder interface {
	SharedKey() (key string, ok bool)
}

// Check reports extensions that cannot be used together: two with the same name, or two that
// claim the same reserved bit.
func Check(exts []Extension) error {
	var claimed RSV
	seen := make(map[string]bool, len(exts))
	for _, e := range exts {
		if seen[e.Name()] {
			return fmt.Errorf("extensions: %q listed twice", e.Name())
		}
		seen[e.Name()] = true
		if claimed&e.RSV() != 0 {
			return fmt.Errorf("extensions: %q claims a reserved bit (%03b) another extension uses", e.Name(), e.RSV())
		}
		claimed |= e.RSV()
	}
	return nil
}
