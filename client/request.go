package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// Request is a nes request: served by the server's application as an HTTP request would be.
type Request struct {
	// Method is the HTTP method. Empty means GET.
	Method string
	// Path is the request's path ("/items/5?full=1"), or a route id without a leading slash
	// ("hello") when the server gives its routes ids.
	Path string
	// Headers are the request's headers, lower case as nes sends them. nes refuses an
	// authorization header here: authenticate the connection instead.
	Headers map[string]string
	// Payload is encoded as JSON (a json.RawMessage as it is). Nil sends none. As in nes, a
	// string payload reaches the application as the string's text, not as a JSON string: a
	// JSON route given Payload "x" reads x, not "x" (send json.RawMessage(`"x"`) for that).
	Payload any
}

// Response is a nes request's answer.
type Response struct {
	// StatusCode is the HTTP status the application answered with, below 400 (errors come back
	// as an *Error of kind KindServer).
	StatusCode int
	// Payload is the response body: JSON as it was, other bodies as a JSON string.
	Payload json.RawMessage
	// Headers are the response headers the server lets through (nil when it lets none).
	Headers http.Header
}

// Request sends a GET request for path (or a route id) and returns the response.
func (c *Client) Request(ctx context.Context, path string) (*Response, error) {
	return c.Do(ctx, &Request{Path: path})
}

// Do sends a request and returns its response, or an error: an *Error of kind KindServer for a
// status of 400 or more (with the status code, payload and headers), ErrDisconnected when the
// connection is not there or goes away before the reply, ErrTimeout after Options.Timeout.
func (c *Client) Do(ctx context.Context, r *Request) (*Response, error) {
	cn, err := c.current()
	if err != nil {
		return nil, err
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	rep, err := cn.call(ctx, &outMessage{Type: "request", Method: method, Path: r.Path, Headers: r.Headers,
		Payload: r.Payload}, c.opts.Timeout)
	if err != nil {
		return nil, err
	}
	status, _ := strconv.Atoi(string(rep.StatusCode))
	return &Response{StatusCode: status, Payload: rep.Payload, Headers: replyHeaders(rep.Headers)}, nil
}

// Message sends a custom message (encoded as JSON; a json.RawMessage as it is) and returns
// the server's answer: what its OnMessage handler returned (nil when it returned nothing).
func (c *Client) Message(ctx context.Context, message any) (json.RawMessage, error) {
	cn, err := c.current()
	if err != nil {
		return nil, err
	}
	rep, err := cn.call(ctx, &outMessage{Type: "message", Message: message}, c.opts.Timeout)
	if err != nil {
		return nil, err
	}
	return rep.Message, nil
}
