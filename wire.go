package herald

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-go/herald/internal/protocol"
)

// The messages the server sends, with their fields in the order @hapi/nes writes them.
// json.RawMessage fields echo what the client sent (its id and type may be any JSON value).

type errorPayload struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

type errorReply struct {
	StatusCode int               `json:"statusCode"`
	Payload    errorPayload      `json:"payload"`
	Headers    map[string]string `json:"headers,omitempty"`
	Type       json.RawMessage   `json:"type,omitempty"`
	ID         json.RawMessage   `json:"id,omitempty"`
	Path       *string           `json:"path,omitempty"`
}

type heartbeatSettings struct {
	Interval int64 `json:"interval"`
	Timeout  int64 `json:"timeout"`
}

type helloReply struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id"`
	Heartbeat any             `json:"heartbeat"` // false or heartbeatSettings
	Socket    string          `json:"socket"`
}

type requestReply struct {
	Type       string            `json:"type"`
	ID         json.RawMessage   `json:"id"`
	StatusCode int               `json:"statusCode"`
	Payload    json.RawMessage   `json:"payload"`
	Headers    map[string]string `json:"headers,omitempty"`
}

type messageReply struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Message json.RawMessage `json:"message,omitempty"`
}

type subReply struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
	Path string          `json:"path"`
}

type idReply struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
}

type pushUpdate struct {
	Type    string          `json:"type"`
	Message json.RawMessage `json:"message"`
}

type pushPub struct {
	Type    string          `json:"type"`
	Path    string          `json:"path"`
	Message json.RawMessage `json:"message"`
}

type pushRevoke struct {
	Type    string          `json:"type"`
	Path    string          `json:"path"`
	Message json.RawMessage `json:"message,omitempty"`
}

// newErrorReply builds the reply for err to a message of typ and id.
func (s *Server) newErrorReply(err *Error, typ, id json.RawMessage) errorReply {
	msg := err.Message
	if err.StatusCode >= 500 {
		msg = "An internal server error occurred"
	}
	r := errorReply{
		StatusCode: err.StatusCode,
		Payload:    errorPayload{Error: http.StatusText(err.StatusCode), Message: msg},
		Headers:    s.filterHeaders(err.Headers),
		Type:       typ,
		ID:         id,
	}
	if r.Payload.Error == "" {
		r.Payload.Error = "Unknown"
	}
	if err.path != "" {
		p := err.path
		r.Path = &p
	}
	return r
}

// filterHeaders keeps the headers Options.Headers lets through, with lower-case names; nil
// when none may go out. When headers are allowed, an empty set is sent as {}.
func (s *Server) filterHeaders(h http.Header) map[string]string {
	if s.headersAll {
		out := make(map[string]string, len(h))
		for k, v := range h {
			out[strings.ToLower(k)] = joinHeader(v)
		}
		return out
	}
	if len(s.headers) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range h {
		if name := strings.ToLower(k); s.headers[name] {
			out[name] = joinHeader(v)
		}
	}
	return out
}

// encode writes a message the server sends. The messages sent on every request and every
// publication are written by hand (the same bytes encoding/json would give, minus its
// reflection); the rest go through protocol.Marshal.
func encode(v any) ([]byte, error) {
	switch m := v.(type) {
	case requestReply:
		if m.Headers != nil {
			break
		}
		b := make([]byte, 0, 64+len(m.ID)+len(m.Payload))
		b = append(b, `{"type":"request","id":`...)
		b = appendRaw(b, m.ID)
		b = append(b, `,"statusCode":`...)
		b = strconv.AppendInt(b, int64(m.StatusCode), 10)
		b = append(b, `,"payload":`...)
		b = appendRaw(b, m.Payload)
		return append(b, '}'), nil
	case pushPub:
		b := make([]byte, 0, 40+len(m.Path)+len(m.Message))
		b = append(b, `{"type":"pub","path":`...)
		b = appendString(b, m.Path)
		b = append(b, `,"message":`...)
		b = appendRaw(b, m.Message)
		return append(b, '}'), nil
	case pushUpdate:
		b := make([]byte, 0, 32+len(m.Message))
		b = append(b, `{"type":"update","message":`...)
		b = appendRaw(b, m.Message)
		return append(b, '}'), nil
	}
	return protocol.Marshal(v)
}

// appendRaw appends a JSON value, compacted when it spans lines (so that every message is one
// line, as the EventSource transport needs).
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	if !bytes.ContainsAny(raw, "\r\n") {
		return append(b, raw...)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return append(b, "null"...)
	}
	return append(b, buf.Bytes()...)
}

// appendString appends s as a JSON string, as JSON.stringify writes it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			switch c {
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029': // as encoding/json, for JavaScript source safety
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			default:
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"
