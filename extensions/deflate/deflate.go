// Package deflate is the permessage-deflate WebSocket extension (RFC 7692) on
// github.com/klauspost/compress/flate, for websocket.Options.Extensions (server) and
// websocket.DialOptions.Extensions (client).
//
// All four parameters are negotiated in both roles, and context takeover is kept in both
// directions by default, as browsers ask. Memory stays small: compressors and decompressors
// are pooled, never kept per connection. Context takeover keeps only history per
// connection: for sending, the last ContextSize bytes of text compressed, which prime a pooled
// compressor as its dictionary for the next message (this writes the same format as a
// compressor kept per connection, with a shorter memory; the window the server uses for itself
// is its own choice); for receiving, the peer's last window of text, which primes a pooled
// decompressor. Both histories are allocated only once compressed traffic flows that way.
package deflate

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/herald-go/herald/extensions"
)

// Options configures permessage-deflate. The zero value is a sensible default.
type Options struct {
	// Level is the compression level, from 1 (fastest) to 9 (smallest output), as in
	// klauspost/compress/flate. klauspost/compress honours levels only with the full 15-bit
	// window: when our side's window is negotiated below 15 bits (server_max_window_bits on a
	// server, client_max_window_bits on a client), it compresses with its windowed encoder,
	// which ignores Level (its speed and ratio are near level 5's). Zero means 1.
	Level int

	// Threshold is the size below which messages are sent uncompressed. Zero means 64 bytes;
	// a negative value compresses every message.
	Threshold int

	// ServerNoContextTakeover makes the server compress each message on its own. A server
	// sets it in its response (and always honours a client that asks); a client asks for it.
	ServerNoContextTakeover bool

	// ClientNoContextTakeover makes the client compress each message on its own. A client
	// offers it; a server with it set requires it of every client (RFC 7692 §7.1.1.2 allows
	// that even when the client did not offer it), which spares the server the history of
	// each client's messages.
	ClientNoContextTakeover bool

	// ServerMaxWindowBits bounds the server's LZ77 window, from 8 to 15. A server uses at most
	// this window and says so when it is below 15; a client asks the server for it. Zero
	// means 15.
	ServerMaxWindowBits int

	// ClientMaxWindowBits bounds the client's LZ77 window, from 8 to 15. A server asks it of
	// clients that support the parameter (browsers do), which bounds the history it keeps per
	// connection to decode their messages with context takeover; a client offers it. Zero
	// means 12 for a server that keeps the client's context (4 KiB of history per connection
	// instead of 32 KiB, for a slightly lower ratio on what clients send; without context
	// takeover it asks for no window) and 15 for a client.
	ClientMaxWindowBits int

	// ContextSize is how many bytes of the text it has sent a connection keeps as context
	// (the dictionary for its next compressed message) when context takeover is on. More
	// compresses repetitive streams better, costs that many bytes per connection, and costs
	// time to prime the compressor with it per message. It is capped by the window. Zero means
	// 4096.
	ContextSize int
}

const (
	// defaultServerClientWindowBits is the window a server asks of clients by default.
	defaultServerClientWindowBits = 12
	defaultThreshold              = 64
	defaultContextSize            = 4096
	maxWindowBits                 = 15
	minWindowBits                 = 8
)

// New returns the permessage-deflate extension.
func New(o Options) extensions.Extension {
	if o.Level <= 0 || o.Level > 9 {
		o.Level = 1
	}
	if o.Threshold == 0 {
		o.Threshold = defaultThreshold
	}
	if o.ServerMaxWindowBits < minWindowBits || o.ServerMaxWindowBits > maxWindowBits {
		o.ServerMaxWindowBits = maxWindowBits
	}
	if o.ClientMaxWindowBits != 0 && (o.ClientMaxWindowBits < minWindowBits || o.ClientMaxWindowBits > maxWindowBits) {
		o.ClientMaxWindowBits = maxWindowBits
	}
	if o.ContextSize <= 0 {
		o.ContextSize = defaultContextSize
	}
	return &extension{o: o}
}

type extension struct{ o Options }

func (e *extension) Name() string        { return "permessage-deflate" }
func (e *extension) RSV() extensions.RSV { return extensions.RSV1 }

// params is a parsed offer or response.
type params struct {
	serverNoContext, clientNoContext bool
	serverBits                       int // 0: absent
	clientBits                       int // 0: absent; -1: present without a value
}

func parseParams(ps []extensions.Param) (params, error) {
	var p params
	seen := map[string]bool{}
	for _, x := range ps {
		if seen[x.Name] {
			return p, fmt.Errorf("parameter %s given twice", x.Name)
		}
		seen[x.Name] = true
		switch x.Name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if x.Value != "" {
				return p, fmt.Errorf("%s takes no value", x.Name)
			}
			if x.Name == "server_no_context_takeover" {
				p.serverNoContext = true
			} else {
				p.clientNoContext = true
			}
		case "server_max_window_bits":
			bits, err := windowBits(x.Value)
			if err != nil {
				return p, fmt.Errorf("server_max_window_bits: %w", err)
			}
			p.serverBits = bits
		case "client_max_window_bits":
			if x.Value == "" {
				p.clientBits = -1
				continue
			}
			bits, err := windowBits(x.Value)
			if err != nil {
				return p, fmt.Errorf("client_max_window_bits: %w", err)
			}
			p.clientBits = bits
		default:
			return p, fmt.Errorf("unknown parameter %s", x.Name)
		}
	}
	return p, nil
}

// windowBits parses a window size: a decimal from 8 to 15 without leading zeros.
func windowBits(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < minWindowBits || n > maxWindowBits || strconv.Itoa(n) != v {
		return 0, fmt.Errorf("%q is not a window size from 8 to 15", v)
	}
	return n, nil
}

// Accept answers a client's offer (RFC 7692 §7.1). Offers with unknown, repeated or malformed
// parameters are declined.
func (e *extension) Accept(offer []extensions.Param) ([]extensions.Param, extensions.Session, bool) {
	p, err := parseParams(offer)
	if err != nil {
		return nil, nil, false
	}
	o := e.o
	var resp []extensions.Param
	s := &session{o: &e.o, send: direction{takeover: true, bits: o.ServerMaxWindowBits}, recv: direction{takeover: true, bits: maxWindowBits}}
	if p.serverNoContext || o.ServerNoContextTakeover {
		s.send.takeover = false
		resp = append(resp, extensions.Param{Name: "server_no_context_takeover"})
	}
	if p.clientNoContext || o.ClientNoContextTakeover {
		s.recv.takeover = false
		resp = append(resp, extensions.Param{Name: "client_no_context_takeover"})
	}
	if p.serverBits > 0 {
		s.send.bits = min(s.send.bits, p.serverBits)
	}
	if p.serverBits > 0 || s.send.bits < maxWindowBits {
		resp = append(resp, extensions.Param{Name: "server_max_window_bits", Value: strconv.Itoa(s.send.bits)})
	}
	if p.clientBits != 0 {
		// The client may be told its window. Ask for ours (by default 12 bits) when its
		// context is kept: that bounds the history held per connection to decode it.
		bits := o.ClientMaxWindowBits
		if bits == 0 && s.recv.takeover {
			bits = defaultServerClientWindowBits
		}
		if p.clientBits > 0 && (bits == 0 || p.clientBits < bits) {
			bits = p.clientBits
		}
		if bits != 0 {
			s.recv.bits = bits
			if bits < maxWindowBits || p.clientBits > 0 {
				resp = append(resp, extensions.Param{Name: "client_max_window_bits", Value: strconv.Itoa(bits)})
			}
		}
	}
	return resp, s.negotiated(), true
}

// Offer is the client's offer, from its Options.
func (e *extension) Offer() []extensions.Param {
	o := e.o
	var ps []extensions.Param
	if o.ServerNoContextTakeover {
		ps = append(ps, extensions.Param{Name: "server_no_context_takeover"})
	}
	if o.ClientNoContextTakeover {
		ps = append(ps, extensions.Param{Name: "client_no_context_takeover"})
	}
	if o.ServerMaxWindowBits < maxWindowBits {
		ps = append(ps, extensions.Param{Name: "server_max_window_bits", Value: strconv.Itoa(o.ServerMaxWindowBits)})
	}
	cb := extensions.Param{Name: "client_max_window_bits"}
	if o.ClientMaxWindowBits != 0 && o.ClientMaxWindowBits < maxWindowBits {
		cb.Value = strconv.Itoa(o.ClientMaxWindowBits)
	}
	return append(ps, cb)
}

// Activate checks the server's response against the offer (RFC 7692 §7.1): anything the
// client did not allow fails the connection.
func (e *extension) Activate(response []extensions.Param) (extensions.Session, error) {
	p, err := parseParams(response)
	if err != nil {
		return nil, err
	}
	o := e.o
	offered := o.ClientMaxWindowBits
	if offered == 0 {
		offered = maxWindowBits
	}
	s := &session{o: &e.o, send: direction{takeover: true, bits: offered}, recv: direction{takeover: true, bits: maxWindowBits}}
	if o.ServerNoContextTakeover && !p.serverNoContext {
		return nil, errors.New("the server did not accept server_no_context_takeover")
	}
	s.recv.takeover = !p.serverNoContext
	s.send.takeover = !p.clientNoContext && !o.ClientNoContextTakeover
	switch {
	case p.serverBits > 0 && p.serverBits > o.ServerMaxWindowBits:
		return nil, fmt.Errorf("the server chose server_max_window_bits=%d, above the %d offered", p.serverBits, o.ServerMaxWindowBits)
	case p.serverBits == 0 && o.ServerMaxWindowBits < maxWindowBits:
		return nil, errors.New("the server did not accept server_max_window_bits")
	case p.serverBits > 0:
		s.recv.bits = p.serverBits
	}
	switch {
	case p.clientBits == -1:
		return nil, errors.New("client_max_window_bits needs a value in a response")
	case p.clientBits > offered:
		return nil, fmt.Errorf("the server chose client_max_window_bits=%d, above the %d offered", p.clientBits, offered)
	case p.clientBits > 0:
		s.send.bits = p.clientBits
	}
	return s.negotiated(), nil
}
