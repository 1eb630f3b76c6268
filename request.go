package herald

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/internal/protocol"
)

// maxRequestHeaders bounds the headers of one nes request, as Node's HTTP server bounds an
// HTTP request's (its maxHeadersCount, 2000). Each header costs some hundred bytes however
// short it is ("a":0 is 5), so the bound keeps what a request allocates near its size.
const maxRequestHeaders = 2000

// Herald's own answers to requests the reference cannot serve (see processRequest).
var (
	errInvalidPath    = NewError(http.StatusBadRequest, "Invalid request path")
	errInvalidMethod  = NewError(http.StatusBadRequest, "Invalid request method")
	errTooManyHeaders = NewError(http.StatusRequestHeaderFieldsTooLarge, "Too many request headers (the limit is "+strconv.Itoa(maxRequestHeaders)+")")
)

// processRequest serves a nes request, timed for Options.Metrics.
func (s *Socket) processRequest(ctx context.Context, m *protocol.Message) (any, error) {
	if s.server.opts.Metrics == nil {
		return s.serveRequest(ctx, m)
	}
	start := time.Now()
	reply, err := s.serveRequest(ctx, m)
	s.meterRequest(m, start, reply, err)
	return reply, err
}

// serveRequest serves a nes request through the application's handler, in-process.
func (s *Socket) serveRequest(ctx context.Context, m *protocol.Message) (any, error) {
	if !protocol.Truthy(m.Method) {
		return nil, errMissingMethod
	}
	if !protocol.Truthy(m.Path) {
		return nil, errMissingPath
	}
	headers, err := requestHeaders(m.Headers)
	if err != nil {
		return nil, err
	}
	// The path and the method are strings. The reference takes nothing else: any other path
	// (an array, a number) fails hapi's route-id assertion and a method that is not a string
	// fails shot's toUpperCase, both taking the Node process down; we answer 400.
	path, ok := protocol.String(m.Path)
	if !ok || path == "" {
		return nil, errInvalidPath
	}
	var method string
	if path[0] != '/' { // a route id: the method is the route's
		route, ok := s.server.lookupRoute(path)
		if !ok {
			return nil, errNotFound
		}
		if route.Method == "*" {
			return nil, errWildcardRoute
		}
		method, path = route.Method, route.Path
	} else if method, ok = protocol.String(m.Method); !ok {
		return nil, errInvalidMethod
	}
	if a := s.server.auth; a != nil && path == a.opts.Endpoint {
		return nil, errNotFound
	}
	r, err := s.newRequest(ctx, strings.ToUpper(method), path, headers, m.Payload)
	if err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}, limit: s.server.opts.MaxResponseBytes}
	s.server.next.ServeHTTP(rec, r)
	if rec.overflow {
		return nil, errResponseTooLarge
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	return requestReply{
		Type:       "request",
		ID:         m.ID,
		StatusCode: status,
		Payload:    responsePayload(status, rec.header.Get("Content-Type"), rec.body.Bytes()),
		Headers:    s.server.filterHeaders(rec.header),
	}, nil
}

// requestHeaders reads a request's headers: the members of an object, in order (the last of
// names equal but for case wins, as in the reference), each value turned into a string the
// way JavaScript does (["a","b"] is "a,b"). Anything but an object carries no headers. An
// Authorization header, in any case, is refused, as by the reference.
func requestHeaders(raw json.RawMessage) (http.Header, error) {
	if !protocol.Truthy(raw) {
		return nil, nil
	}
	var h http.Header
	n := 0
	err := protocol.Members(raw, func(name string, value json.RawMessage) error {
		if strings.EqualFold(name, "authorization") {
			return errAuthHeader
		}
		if n++; n > maxRequestHeaders {
			return errTooManyHeaders
		}
		if h == nil {
			h = http.Header{}
		}
		h.Set(name, protocol.JSString(value))
		return nil
	})
	return h, err
}

// newRequest builds the http.Request a nes request stands for. Its context carries the socket
// and its credentials (see SocketFrom, CredentialsFrom).
func (s *Socket) newRequest(ctx context.Context, method, path string, h http.Header, payload json.RawMessage) (*http.Request, error) {
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, errInvalidPath
	}
	if h == nil {
		h = make(http.Header, 1)
	}
	var body []byte
	if len(payload) > 0 && string(payload) != "null" {
		if str, ok := protocol.String(payload); ok {
			body = []byte(str)
		} else {
			body = payload
			if h.Get("Content-Type") == "" {
				h.Set("Content-Type", "application/json")
			}
		}
	}
	ctx = context.WithValue(ctx, socketKey{}, &requestOrigin{socket: s, credentials: s.credentials()})
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	// One allocation of the request, with its context; the URL parsed as a server parses a
	// request line (so "//x" is a path, not a host).
	r, err := http.NewRequestWithContext(ctx, method, "/", rd)
	if err != nil {
		return nil, errInvalidMethod
	}
	if r.Body == nil {
		r.Body = http.NoBody // as a server's requests: never nil
	}
	r.URL = u
	r.RequestURI = path
	r.Header = h
	r.Host = s.req.Host
	r.RemoteAddr = s.remoteAddr
	r.TLS = s.req.TLS
	if len(body) > 0 {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return r, nil
}

// responsePayload turns a handler's response into the reply's payload: a JSON body goes out
// as JSON; an error status without a JSON body as {statusCode, error, message}, the shape the
// official client reads (it fails on a null error payload), with the body's text as message
// below 500; an empty body as null; any other body as a string.
func responsePayload(status int, contentType string, body []byte) json.RawMessage {
	if isJSON(contentType) && json.Valid(body) {
		return body
	}
	if status >= 400 {
		msg := strings.TrimSpace(string(body))
		switch {
		case status >= 500:
			msg = "An internal server error occurred" // as hapi: server errors don't leak their text
		case msg == "" || msg == "404 page not found": // net/http's NotFound body means what hapi's says
			msg = http.StatusText(status)
		}
		b, _ := protocol.Marshal(struct {
			StatusCode int    `json:"statusCode"`
			Error      string `json:"error"`
			Message    string `json:"message"`
		}{status, http.StatusText(status), msg})
		return b
	}
	if len(body) == 0 {
		return json.RawMessage("null")
	}
	b, _ := protocol.Marshal(string(body))
	return b
}

func isJSON(contentType string) bool {
	if strings.HasPrefix(contentType, "application/json") && (len(contentType) == 16 || contentType[16] == ';') {
		return true // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// recorder is the http.ResponseWriter a nes request is served into, with a bounded body.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int
	overflow bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(p) > r.limit {
		r.overflow = true
		return 0, errResponseTooLarge
	}
	return r.body.Write(p)
}

// Flush lets handlers that flush run unchanged; the reply goes out once they return.
func (r *recorder) Flush() {}
