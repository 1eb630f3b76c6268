package extensions

import (
	"fmt"
	"strings"
)

// Offer is one entry of a Sec-WebSocket-Extensions header: an extension name and its
// parameters, as a client offers it or a server accepts it.
type Offer struct {
	Name   string
	Params []Param
}

// Parse parses the values of Sec-WebSocket-Extensions headers (RFC 6455 §9.1), in order:
//
//	permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits="10"
//
// Quoted values are unquoted; they must be tokens once unquoted, as the RFC requires.
func Parse(values ...string) ([]Offer, error) {
	var offers []Offer
	for _, v := range values {
		p := parser{s: v}
		for {
			p.space()
			if p.done() {
				break
			}
			if p.peek() == ',' { // empty list elements are allowed (RFC 7230 §7)
				p.i++
				continue
			}
			o, err := p.offer()
			if err != nil {
				return nil, fmt.Errorf("extensions: malformed Sec-WebSocket-Extensions %q: %w", v, err)
			}
			offers = append(offers, o)
		}
	}
	return offers, nil
}

// Format writes offers as a Sec-WebSocket-Extensions value, quoting values that need it.
func Format(offers ...Offer) string {
	var b strings.Builder
	for i, o := range offers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.Name)
		for _, p := range o.Params {
			b.WriteString("; ")
			b.WriteString(p.Name)
			if p.Value != "" {
				b.WriteByte('=')
				if isToken(p.Value) {
					b.WriteString(p.Value)
				} else {
					b.WriteByte('"')
					_, _ = quoter.WriteString(&b, p.Value)
					b.WriteByte('"')
				}
			}
		}
	}
	return b.String()
}

// quoter escapes a quoted-string's backslashes and quotes.
var quoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }

func (p *parser) space() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// offer parses: token *( ";" param ) followed by "," or the end.
func (p *parser) offer() (Offer, error) {
	name := p.token()
	if name == "" {
		return Offer{}, fmt.Errorf("expected an extension name at offset %d", p.i)
	}
	o := Offer{Name: name}
	for {
		p.space()
		if p.done() {
			return o, nil
		}
		switch p.peek() {
		case ',':
			p.i++
			return o, nil
		case ';':
			p.i++
			p.space()
			param, err := p.param()
			if err != nil {
				return Offer{}, err
			}
			o.Params = append(o.Params, param)
		default:
			return Offer{}, fmt.Errorf("unexpected %q at offset %d", p.peek(), p.i)
		}
	}
}

// param parses: token [ "=" ( token | quoted-string ) ].
func (p *parser) param() (Param, error) {
	name := p.token()
	if name == "" {
		return Param{}, fmt.Errorf("expected a parameter name at offset %d", p.i)
	}
	p.space()
	if p.done() || p.peek() != '=' {
		return Param{Name: name}, nil
	}
	p.i++
	p.space()
	if p.done() {
		return Param{}, fmt.Errorf("parameter %s has no value", name)
	}
	if p.peek() != '"' {
		v := p.token()
		if v == "" {
			return Param{}, fmt.Errorf("parameter %s has no value", name)
		}
		return Param{Name: name, Value: v}, nil
	}
	p.i++
	var v strings.Builder
	for {
		if p.done() {
			return Param{}, fmt.Errorf("unterminated quoted value of %s", name)
		}
		c := p.peek()
		p.i++
		switch c {
		case '"':
			if !isToken(v.String()) {
				return Param{}, fmt.Errorf("quoted value of %s is not a token", name)
			}
			return Param{Name: name, Value: v.String()}, nil
		case '\\':
			if p.done() {
				return Param{}, fmt.Errorf("unterminated quoted value of %s", name)
			}
			v.WriteByte(p.peek())
			p.i++
		default:
			v.WriteByte(c)
		}
	}
}

func (p *parser) token() string {
	start := p.i
	for !p.done() && isTokenByte(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

// isTokenByte reports a tchar of RFC 7230 §3.2.6.
func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
