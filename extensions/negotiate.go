package extensions

import (
	"errors"
	"fmt"
)

// Negotiated is a connection's chain of extension sessions, in the order the handshake
// response lists them.
type Negotiated struct {
	Sessions []Session
	// RSV is the union of the reserved bits the negotiated extensions may set.
	RSV RSV
	// Header is the Sec-WebSocket-Extensions value of the handshake response ("" for none).
	Header string
}

// Encode runs an outgoing message through every session, in order.
func (n *Negotiated) Encode(m *Message) error {
	for _, s := range n.Sessions {
		if err := s.Encode(m); err != nil {
			return err
		}
	}
	return nil
}

// SharedKey names the chain's encoding when every session's output depends on the message
// alone (see SharedEncoder), and reports ok == false otherwise.
func (n *Negotiated) SharedKey() (string, bool) {
	key := ""
	for _, s := range n.Sessions {
		se, ok := s.(SharedEncoder)
		if !ok {
			return "", false
		}
		k, ok := se.SharedKey()
		if !ok {
			return "", false
		}
		key += k + ";"
	}
	return key, true
}

// Decode runs an incoming message through the sessions in reverse order.
func (n *Negotiated) Decode(m *Message) error {
	for i := len(n.Sessions) - 1; i >= 0; i-- {
		if err := n.Sessions[i].Decode(m); err != nil {
			return err
		}
	}
	return nil
}

// ServerNegotiate answers a client's offers (the parsed Sec-WebSocket-Extensions of its
// handshake) with the server's extensions. Offers are considered in the client's order; the
// first offer of an extension that the extension accepts activates it, and later offers of it
// are ignored.
func ServerNegotiate(offers []Offer, exts []Extension) (*Negotiated, error) {
	if err := Check(exts); err != nil {
		return nil, err
	}
	n := &Negotiated{}
	var accepted []Offer
	active := map[string]bool{}
	for _, o := range offers {
		if active[o.Name] {
			continue
		}
		// Check has made names unique and reserved bits disjoint, so at most one extension
		// matches and its bits are free.
		for _, e := range exts {
			if e.Name() != o.Name {
				continue
			}
			if resp, s, ok := e.Accept(o.Params); ok {
				active[o.Name] = true
				n.Sessions = append(n.Sessions, s)
				n.RSV |= e.RSV()
				accepted = append(accepted, Offer{Name: o.Name, Params: resp})
			}
			break
		}
	}
	if len(accepted) > 0 {
		n.Header = Format(accepted...)
	}
	return n, nil
}

// ClientOffer returns the Sec-WebSocket-Extensions value a client sends for exts.
func ClientOffer(exts []Extension) (string, error) {
	if err := Check(exts); err != nil {
		return "", err
	}
	offers := make([]Offer, 0, len(exts))
	for _, e := range exts {
		offers = append(offers, Offer{Name: e.Name(), Params: e.Offer()})
	}
	return Format(offers...), nil
}

// ClientActivate checks a server's Sec-WebSocket-Extensions response against what was
// offered and activates the sessions. A response that names an extension not offered, names
// one twice, or that an extension rejects, is an error that must fail the connection.
func ClientActivate(response []string, exts []Extension) (*Negotiated, error) {
	offers, err := Parse(response...)
	if err != nil {
		return nil, err
	}
	n := &Negotiated{}
	for _, o := range offers {
		var ext Extension
		for _, e := range exts {
			if e.Name() == o.Name {
				ext = e
			}
		}
		switch {
		case ext == nil:
			return nil, fmt.Errorf("extensions: the server accepted %q, which was not offered", o.Name)
		case n.RSV&ext.RSV() != 0:
			return nil, errors.New("extensions: the server accepted " + o.Name + " twice or with a conflicting reserved bit")
		}
		s, err := ext.Activate(o.Params)
		if err != nil {
			return nil, fmt.Errorf("extensions: %s: %w", o.Name, err)
		}
		n.Sessions = append(n.Sessions, s)
		n.RSV |= ext.RSV()
	}
	if len(offers) > 0 {
		n.Header = Format(offers...)
	}
	return n, nil
}
