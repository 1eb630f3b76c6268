package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind says what went wrong, as the @hapi/nes client's error types do.
type Kind string

// The kinds of Error.
const (
	// KindDisconnect: the connection was not there, or went away before the reply came.
	KindDisconnect Kind = "disconnect"
	// KindProtocol: the server sent something that is not nes.
	KindProtocol Kind = "protocol"
	// KindServer: the server answered with an error status (StatusCode, Payload, Headers).
	KindServer Kind = "server"
	// KindTimeout: no reply within the request or connect timeout, or a heartbeat missed.
	KindTimeout Kind = "timeout"
	// KindUser: the call itself was wrong (an invalid path, a value that cannot be encoded).
	KindUser Kind = "user"
	// KindTransport: the network, TLS, a proxy or the WebSocket handshake failed.
	KindTransport Kind = "transport"
)

// Sentinels matched with errors.Is. An *Error of kind KindDisconnect matches ErrDisconnected,
// one of kind KindTimeout matches ErrTimeout.
var (
	// ErrDisconnected: a call was made while the client was not connected, or the connection
	// went away while it waited for its reply.
	ErrDisconnected = errors.New("client: disconnected")
	// ErrTimeout: no reply within the timeout.
	ErrTimeout = errors.New("client: timed out")
	// ErrClosed: the client was closed; it cannot be used again.
	ErrClosed = errors.New("client: closed")
	// ErrHeartbeatTimeout: the server stopped answering for longer than the heartbeat it
	// announced (interval + timeout). The client disconnects and, unless told not to,
	// reconnects.
	ErrHeartbeatTimeout = errors.New("client: heartbeat timeout: the server sent nothing for longer than its heartbeat allows")
	// ErrHandlerQueueFull is reported to Options.OnError when a subscription handler or
	// OnUpdate falls so far behind that its queue (Options.HandlerQueue) is full: the update is
	// dropped.
	ErrHandlerQueueFull = errors.New("client: handler queue full, update dropped (the handler is too slow; see Options.HandlerQueue)")
)

// Error is an error of a nes call or connection. Server errors carry the status code, the
// payload ({"error", "message", ...}) and the headers the server lets through; subscription
// failures carry the path.
type Error struct {
	// Kind says what went wrong: the server refused (KindServer), the connection was lost,
	// a call timed out, the peer broke the protocol, the transport failed, or the call was
	// misused (KindUser).
	Kind Kind
	// Message is the error's text: the server's message for KindServer, else the client's.
	Message string
	// StatusCode is the server's status (400 and up) for KindServer, else zero.
	StatusCode int
	// Payload is the error's payload as the server sent it, for KindServer.
	Payload json.RawMessage
	// Headers are the response headers the server lets through (its Headers option).
	Headers http.Header
	// Path names the subscription that failed, when one did.
	Path string
	// Err is the underlying error, if any (a network error, a *websocket.HandshakeError,
	// context.DeadlineExceeded).
	Err error
}

// Error returns "client: KIND [STATUS]: MESSAGE", with the path and the underlying error
// when there are.
func (e *Error) Error() string {
	msg := "client: " + string(e.Kind)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" %d", e.StatusCode)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Path != "" {
		msg += " (path " + e.Path + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches ErrDisconnected and ErrTimeout by kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrDisconnected:
		return e.Kind == KindDisconnect
	case ErrTimeout:
		return e.Kind == KindTimeout
	}
	return false
}

// StatusCode returns the server's status code of a KindServer error, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// transportErrors is why each transport tried failed, in order, when none reached the
// server: its text names them all, and errors.Is and errors.As look into each.
type transportErrors []error

func (e transportErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		var ce *Error
		if errors.As(err, &ce) && ce.Err != nil {
			parts[i] = ce.Message + ": " + ce.Err.Error() // without the repeated "client: transport"
		} else {
			parts[i] = err.Error()
		}
	}
	return strings.Join(parts, "; ")
}

func (e transportErrors) Unwrap() []error { return e }

// cause is the error itself, or its one error when there is only one.
func (e transportErrors) cause() error {
	if len(e) == 1 {
		return e[0]
	}
	return e
}

func newError(kind Kind, msg string, cause error) *Error {
	return &Error{Kind: kind, Message: msg, Err: cause}
}
