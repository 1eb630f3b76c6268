package herald

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error that reaches the client as a nes error reply: an HTTP status code and a
// message, in the shape @hapi/nes gives hapi's Boom errors:
//
//	{"type":"sub","id":3,"statusCode":404,"payload":{"error":"Not Found","message":"Subscription not found"}}
//
// Return one from a callback (OnConnection, OnMessage, OnSubscribe, an Authenticator) to
// choose what the client sees; any other error reaches it as a 500 whose message hides the
// error's text.
type Error struct {
	// StatusCode is an HTTP status of 400 or more.
	StatusCode int
	// Message is what the client reads. For 5xx statuses the client reads "An internal server
	// error occurred" instead, as with hapi.
	Message string
	// Headers go out with the reply when Options.Headers lets them through.
	Headers http.Header

	path string // the subscription that failed, for hello's subs
	err  error  // the error behind a 500
}

// NewError returns an error with an HTTP status and a message. An empty message takes the
// status's text ("Not Found").
func NewError(status int, message string) *Error {
	if message == "" {
		message = http.StatusText(status)
	}
	return &Error{StatusCode: status, Message: message}
}

// Error returns "nes: STATUS MESSAGE", with the wrapped error when there is one.
func (e *Error) Error() string {
	if e.err != nil {
		return fmt.Sprintf("nes: %d %s: %v", e.StatusCode, e.Message, e.err)
	}
	return fmt.Sprintf("nes: %d %s", e.StatusCode, e.Message)
}

// Unwrap returns the error behind an internal server error.
func (e *Error) Unwrap() error { return e.err }

// asError turns any error into the *Error the client is sent.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{StatusCode: http.StatusInternalServerError, Message: "An internal server error occurred", err: err}
}

// The reference's error messages, which clients may match on.
var (
	errCannotParse      = NewError(http.StatusBadRequest, "Cannot parse message")
	errMissingID        = NewError(http.StatusBadRequest, "Message missing id")
	errNotInitialized   = NewError(http.StatusBadRequest, "Connection is not initialized")
	errAlreadyInit      = NewError(http.StatusBadRequest, "Connection already initialized")
	errUnknownType      = NewError(http.StatusBadRequest, "Unknown message type")
	errMissingMethod    = NewError(http.StatusBadRequest, "Message missing method")
	errMissingPath      = NewError(http.StatusBadRequest, "Message missing path")
	errAuthHeader       = NewError(http.StatusBadRequest, "Cannot include an Authorization header")
	errWildcardRoute    = NewError(http.StatusBadRequest, "Cannot use route id with wildcard method route config")
	errNotImplemented   = NewError(http.StatusNotImplemented, "")
	errNotFound         = NewError(http.StatusNotFound, "")
	errSubQuery         = NewError(http.StatusBadRequest, "Subscription path cannot contain query")
	errSubNotFound      = NewError(http.StatusNotFound, "Subscription not found")
	errSubAuthRequired  = NewError(http.StatusUnauthorized, "Authentication required to subscribe")
	errAuthRequired     = NewError(http.StatusUnauthorized, "Connection requires authentication")
	errAlreadyAuth      = NewError(http.StatusBadRequest, "Connection already authenticated")
	errInvalidToken     = NewError(http.StatusUnauthorized, "Invalid token")
	errInvalidCookie    = NewError(http.StatusUnauthorized, "Invalid nes authentication cookie")
	errTooManyForUser   = NewError(http.StatusServiceUnavailable, "Too many connections for the authenticated user")
	errVerifyFailed     = NewError(http.StatusForbidden, "Credential verification failed")
	errTooManySubs      = NewError(http.StatusTooManyRequests, "Too many subscriptions on this connection (see Options.MaxSubscriptions)")
	errResponseTooLarge = NewError(http.StatusInternalServerError, "response larger than Options.MaxResponseBytes")
)

// ErrSlowConsumer is why a socket is disconnected when its send queue passes its bound (see
// Options.SendQueueLimit).
var ErrSlowConsumer = errors.New("nes: send queue full, the client is not reading fast enough")
