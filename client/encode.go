package client

import (
	"encoding/json"
	"strconv"

	"github.com/herald-go/herald/internal/protocol"
)

// encode writes m as JSON, by hand for the fields every message has (so that a request costs
// no reflection), through encoding/json for the values the application gives (payloads,
// messages, auth, headers). JSON values given as json.RawMessage are checked and kept as they
// are.
func encode(m *outMessage) ([]byte, error) {
	b := make([]byte, 0, 96+len(m.Path))
	b = append(b, `{"type":`...)
	b = appendString(b, m.Type)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, m.ID, 10)
	var err error
	if m.Version != "" {
		b = append(b, `,"version":`...)
		b = appendString(b, m.Version)
	}
	if m.Auth != nil {
		if b, err = appendValue(append(b, `,"auth":`...), m.Auth); err != nil {
			return nil, err
		}
	}
	if len(m.Subs) > 0 {
		if b, err = appendValue(append(b, `,"subs":`...), m.Subs); err != nil {
			return nil, err
		}
	}
	if m.Method != "" {
		b = append(b, `,"method":`...)
		b = appendString(b, m.Method)
	}
	if m.Path != "" {
		b = append(b, `,"path":`...)
		b = appendString(b, m.Path)
	}
	if len(m.Headers) > 0 {
		if b, err = appendValue(append(b, `,"headers":`...), m.Headers); err != nil {
			return nil, err
		}
	}
	if m.Payload != nil {
		if b, err = appendValue(append(b, `,"payload":`...), m.Payload); err != nil {
			return nil, err
		}
	}
	if m.Message != nil {
		if b, err = appendValue(append(b, `,"message":`...), m.Message); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string: as it is when nothing in it needs escaping, else
// through encoding/json (without HTML escaping, as JavaScript writes it).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, _ := protocol.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendValue appends an application's value as JSON.
func appendValue(b []byte, v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, &json.SyntaxError{}
		}
		return append(b, raw...), nil
	}
	q, err := protocol.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, q...), nil
}
