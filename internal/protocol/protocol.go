// Package protocol holds the nes protocol's wire format (version 2, as @hapi/nes 14 speaks it):
// the messages in both directions, their encoding, and the chunking of long messages, for the
// server (package herald) and, once it is written, a Go client.
package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Version is the protocol version a hello carries.
const Version = "2"

// Message is a nes message as it is decoded from the wire, in either direction. Fields that
// may hold any JSON value, or whose absence matters, are raw; a field absent from the
// message is nil (a JSON null is the four bytes "null").
type Message struct {
	Type       json.RawMessage `json:"type,omitempty"`
	ID         json.RawMessage `json:"id,omitempty"`
	Version    json.RawMessage `json:"version,omitempty"`
	Auth       json.RawMessage `json:"auth,omitempty"`
	Subs       json.RawMessage `json:"subs,omitempty"`
	Method     json.RawMessage `json:"method,omitempty"`
	Path       json.RawMessage `json:"path,omitempty"`
	Headers    json.RawMessage `json:"headers,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Message    json.RawMessage `json:"message,omitempty"`
	StatusCode json.RawMessage `json:"statusCode,omitempty"`
	Heartbeat  json.RawMessage `json:"heartbeat,omitempty"`
	Socket     json.RawMessage `json:"socket,omitempty"`
}

// MaxDepth bounds the nesting of a message's arrays and objects: Decode refuses a message
// nested deeper (the server answers 400 "Cannot parse message"). It is encoding/json's own
// limit, so that whatever an application decodes from a payload with it fits; the reference
// has none, but converts values nested some thousands deep to strings by recursion and
// overflows its stack (a hello whose version is nested 5000 deep takes its Node process down).
// Nesting costs no more than its bytes: nothing herald does with a message recurses.
const MaxDepth = 10000

// Decode parses one message. Anything but a JSON object nested at most MaxDepth deep is an
// error. Field names match
// exactly, as in JavaScript (encoding/json would also take "Type" for "type"), and the last
// of repeated names wins, as in JSON.parse. The fields point into data, which must not change
// while the message is in use.
func Decode(data []byte) (*Message, error) {
	if !json.Valid(data) {
		return nil, errorString("nes: invalid JSON")
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, errorString("nes: message is not a JSON object")
	}
	m := &Message{}
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] != '}' {
		keyEnd := valueEnd(data, i)
		key := data[i:keyEnd]
		i = skipSpace(data, keyEnd)
		i = skipSpace(data, i+1) // ':'
		end := valueEnd(data, i)
		if field := m.field(key); field != nil {
			*field = data[i:end]
		}
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return m, nil
}

// Members calls fn with each member of a JSON object in order (repeated names each time), the
// name decoded, the value raw, until fn returns an error, which Members returns. raw must be
// valid JSON (what Decode gives); a value that is not an object has no members.
func Members(raw json.RawMessage, fn func(name string, value json.RawMessage) error) error {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil
	}
	i = skipSpace(raw, i+1)
	for i < len(raw) && raw[i] == '"' {
		keyEnd := valueEnd(raw, i)
		name, _ := String(raw[i:keyEnd])
		i = skipSpace(raw, keyEnd)
		i = skipSpace(raw, i+1) // ':'
		if i >= len(raw) {
			break
		}
		end := valueEnd(raw, i)
		if err := fn(name, raw[i:end]); err != nil {
			return err
		}
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return nil
}

// field returns the field a quoted key names, or nil.
func (m *Message) field(quoted []byte) *json.RawMessage {
	key := string(quoted[1 : len(quoted)-1]) // no allocation: the switch compares in place
	if bytes.IndexByte(quoted, '\\') >= 0 {
		if s, ok := String(quoted); ok {
			key = s
		}
	}
	switch key {
	case "type":
		return &m.Type
	case "id":
		return &m.ID
	case "version":
		return &m.Version
	case "auth":
		return &m.Auth
	case "subs":
		return &m.Subs
	case "method":
		return &m.Method
	case "path":
		return &m.Path
	case "headers":
		return &m.Headers
	case "payload":
		return &m.Payload
	case "message":
		return &m.Message
	case "statusCode":
		return &m.StatusCode
	case "heartbeat":
		return &m.Heartbeat
	case "socket":
		return &m.Socket
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the end of the JSON value starting at b[i], in valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = valueEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

// String returns a raw JSON value as a string when it is one, and ok == false otherwise.
// Escapes are decoded as encoding/json decodes them (invalid UTF-8 and lone surrogates become
// U+FFFD), in time linear in len(raw) and with one allocation, the result.
func String(raw json.RawMessage) (s string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var b strings.Builder
	b.Grow(len(raw))
	if !unquoteTo(&b, raw) {
		return "", false
	}
	return b.String(), true
}

// unquoteTo writes the JSON string quoted to b, decoded. It reports false when quoted is not
// a well-formed JSON string (what it wrote is then to be dropped).
func unquoteTo(b *strings.Builder, quoted []byte) bool {
	if len(quoted) < 2 || quoted[0] != '"' || quoted[len(quoted)-1] != '"' {
		return false
	}
	s := quoted[1 : len(quoted)-1]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(s) {
				return false
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := hex4(s[i+2:])
				if !ok {
					return false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
						if r2, ok := hex4(s[i+2:]); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b.WriteRune(dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b.WriteRune(r)
				continue
			default:
				return false
			}
			i += 2
		case c < utf8.RuneSelf:
			j := i + 1
			for j < len(s) && s[j] >= 0x20 && s[j] < utf8.RuneSelf && s[j] != '"' && s[j] != '\\' {
				j++
			}
			b.Write(s[i:j])
			i = j
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.Write(s[i : i+size])
			}
			i += size
		}
	}
	return true
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Truthy reports whether a raw JSON value is truthy in JavaScript's sense: present, and not
// false, null, 0 or "".
func Truthy(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "", "false", "null", `""`:
		return false
	}
	if c := raw[0]; c == '-' || c >= '0' && c <= '9' {
		f, err := strconv.ParseFloat(string(raw), 64)
		return err != nil || f != 0
	}
	return true
}

// Marshal encodes v as JSON the way JavaScript's JSON.stringify writes it: no HTML escaping,
// no trailing newline.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Chunks splits an encoded message into the parts the reference sends when it is longer than
// maxChunkChars: each part but the last prefixed with '+', the last with '!'. Lengths count
// UTF-16 code units, as JavaScript strings do, but a part never ends inside a character (the
// reference can split a surrogate pair; we move the cut before it). With maxChunkChars <= 0,
// or a message that fits, it returns the message whole.
func Chunks(msg []byte, maxChunkChars int) [][]byte {
	if maxChunkChars <= 0 || utf16Len(msg) <= maxChunkChars {
		return [][]byte{msg}
	}
	var parts [][]byte
	for len(msg) > 0 {
		units, cut := 0, 0
		for cut < len(msg) {
			r, size := utf8.DecodeRune(msg[cut:])
			n := utf16Units(r)
			if units+n > maxChunkChars {
				break
			}
			units += n
			cut += size
		}
		if cut == 0 { // a character wider than the limit (a surrogate pair with maxChunkChars 1)
			_, cut = utf8.DecodeRune(msg)
		}
		prefix := byte('+')
		if cut == len(msg) {
			prefix = '!'
		}
		part := make([]byte, 0, cut+1)
		parts = append(parts, append(append(part, prefix), msg[:cut]...))
		msg = msg[cut:]
	}
	return parts
}

// utf16Len counts the UTF-16 code units of UTF-8 text.
func utf16Len(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		n += utf16Units(r)
		b = b[size:]
	}
	return n
}

// utf16Units is how many UTF-16 code units r takes: 2 past the BMP, else 1.
func utf16Units(r rune) int {
	if utf16.RuneLen(r) == 2 {
		return 2
	}
	return 1
}

// Assembler rebuilds messages a server sent in chunks, as the reference client does.
type Assembler struct {
	parts [][]byte
	size  int
	// Limit bounds the bytes buffered for one chunked message; zero means no limit.
	Limit int
}

// ErrIncomplete is reported when a whole message arrives while chunks are buffered: the
// buffered chunks are dropped, as the reference client drops them.
var ErrIncomplete = errorString("nes: received an incomplete message")

// ErrChunkTooLarge is reported when a chunked message grows past Assembler.Limit.
var ErrChunkTooLarge = errorString("nes: chunked message exceeds the size limit")

type errorString string

func (e errorString) Error() string { return string(e) }

// Add takes one frame. It returns a complete message when one is ready (nil while a chunked
// message is still arriving) and ErrIncomplete alongside a whole message that interrupted
// buffered chunks.
func (a *Assembler) Add(frame []byte) (msg []byte, err error) {
	if len(frame) > 0 && frame[0] != '{' {
		a.size += len(frame) - 1
		if a.Limit > 0 && a.size > a.Limit {
			a.parts, a.size = nil, 0
			return nil, ErrChunkTooLarge
		}
		a.parts = append(a.parts, frame[1:])
		if frame[0] != '!' {
			return nil, nil
		}
		msg = bytes.Join(a.parts, nil)
		a.parts, a.size = nil, 0
		return msg, nil
	}
	if len(a.parts) > 0 {
		a.parts, a.size = nil, 0
		return frame, ErrIncomplete
	}
	return frame, nil
}
