package herald

import (
	"encoding/json"
	"net/http"
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
			out[lower(k)] = joinHeader(v)
		}
		return out
	}
	if len(s.headers) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range h {
		if s.headers[lower(k)] {
			out[lower(k)] = joinHeader(v)
		}
	}
	return out
}
