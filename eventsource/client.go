package eventsource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// ClientOptions configures a Client. A nil *ClientOptions is valid and means all defaults.
type ClientOptions struct {
	// Header holds extra request headers, such as Authorization.
	Header http.Header

	// LastEventID is sent as Last-Event-ID on the first connection, to resume a stream after
	// that event. Empty means a fresh start.
	LastEventID string

	// Retry is how long to wait before reconnecting until the server sends a "retry:" field,
	// which replaces it. Zero means 3 seconds.
	Retry time.Duration

	// MaxRetry caps the wait between connection attempts that keep failing: the wait doubles
	// from the retry time with each failure, up to MaxRetry (or the server's retry time, when
	// that is longer). Zero means 60 seconds.
	MaxRetry time.Duration

	// MaxEventSize bounds one event's fields in bytes (and any one line). A larger event ends
	// Run with an *EventTooLargeError rather than reconnecting to receive it again. Zero means
	// 1 MiB.
	MaxEventSize int

	// Proxy selects the proxy for a request, as http.Transport.Proxy: HTTP CONNECT for https
	// URLs, plain proxying for http ones. Zero means http.ProxyFromEnvironment (HTTP_PROXY,
	// HTTPS_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)

	// ProxyConnectHeader holds headers for the proxy's CONNECT request (such as
	// Proxy-Authorization when the proxy URL has no user info).
	ProxyConnectHeader http.Header

	// TLSClientConfig configures TLS to https servers. Zero means the defaults.
	TLSClientConfig *tls.Config

	// HTTPClient, when set, makes the requests and Proxy, ProxyConnectHeader and
	// TLSClientConfig are ignored. Its Timeout must be zero: a stream lasts. Zero means a
	// client of Run's own (HTTP/1.1 and HTTP/2), whose connections Run closes when it returns.
	HTTPClient *http.Client

	// OnOpen, when set, is called with each response that opened the stream (200,
	// text/event-stream), before its events. The body must not be read.
	OnOpen func(resp *http.Response)

	// OnError, when set, is called with the error of each connection that failed or ended
	// (io.EOF for a clean end of the stream), before the wait to reconnect.
	OnError func(err error)
}

const (
	defaultClientRetry = 3 * time.Second
	defaultMaxRetry    = 60 * time.Second
)

// StatusError is returned by Run when the server answers with something other than an event
// stream: a status other than 200 (204 No Content is how a server tells a client to stop) or
// another Content-Type. As browsers do, the client then stops instead of reconnecting.
type StatusError struct {
	StatusCode  int    // the response's status code
	ContentType string // the response's Content-Type (what was wrong when StatusCode is 200)
}

// Error says what the server answered instead of an event stream.
func (e *StatusError) Error() string {
	if e.StatusCode != http.StatusOK {
		return fmt.Sprintf("eventsource: the server answered %d %s, not an event stream", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("eventsource: the server answered with Content-Type %q, not text/event-stream", e.ContentType)
}

// Client is a Go EventSource: it reads an event stream, reconnects when the stream ends or
// drops, after the server's retry time, and resumes with Last-Event-ID so that a server with
// a history (see Stream) sends what was missed.
//
// Run reads on one goroutine at a time; LastEventID and Retry are safe for concurrent use.
type Client struct {
	url string
	o   ClientOptions

	mu     sync.Mutex
	lastID string
	retry  time.Duration
}

// NewClient returns a client for the event stream at rawURL (http or https). It connects when
// Run is called.
func NewClient(rawURL string, opts *ClientOptions) *Client {
	c := &Client{url: rawURL}
	if opts != nil {
		c.o = *opts
	}
	if c.o.Retry <= 0 {
		c.o.Retry = defaultClientRetry
	}
	if c.o.MaxRetry <= 0 {
		c.o.MaxRetry = defaultMaxRetry
	}
	if c.o.MaxEventSize <= 0 {
		c.o.MaxEventSize = defaultMaxEventSize
	}
	c.lastID = c.o.LastEventID
	c.retry = c.o.Retry
	return c
}

// LastEventID returns the id of the last event received (or ClientOptions.LastEventID before
// any), which the next connection sends as Last-Event-ID.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// Retry returns the current reconnection time: the server's last "retry:" field, or
// ClientOptions.Retry.
func (c *Client) Retry() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retry
}

// Run connects and calls handle with each event, in order, on the calling goroutine, until
// ctx ends. When the stream ends (cleanly or not) or a connection attempt fails, it waits the
// retry time (doubling after each failed attempt, up to MaxRetry) and reconnects with
// Last-Event-ID. It returns ctx's error when ctx ends, a *StatusError when the server refuses
// the stream, an *EventTooLargeError for an event over MaxEventSize, or an error for a URL it
// cannot request. Cancelling ctx closes the connection.
func (c *Client) Run(ctx context.Context, handle func(Message)) error {
	hc := c.o.HTTPClient
	if hc == nil {
		proxy := c.o.Proxy
		if proxy == nil {
			proxy = http.ProxyFromEnvironment
		}
		tr := &http.Transport{
			Proxy:                 proxy,
			ProxyConnectHeader:    c.o.ProxyConnectHeader,
			TLSClientConfig:       c.o.TLSClientConfig,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			// One stream per connection: a connection closes when its stream ends (over
			// HTTP/2 too), so nothing outlives Run, however the stream ended.
			DisableKeepAlives: true,
		}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	failures := 0
	for {
		opened, err := c.once(ctx, hc, handle)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var se *StatusError
		var tl *EventTooLargeError
		var ue *url.Error
		switch {
		case errors.As(err, &se), errors.As(err, &tl):
			return err
		case errors.As(err, &ue) && ue.Op == "parse":
			return err
		}
		if c.o.OnError != nil {
			c.o.OnError(err)
		}
		delay := c.Retry()
		if opened {
			failures = 0
		} else {
			failures++
			limit := max(c.o.MaxRetry, delay)
			for i := 1; i < failures && delay < limit; i++ {
				delay *= 2
			}
			delay = min(delay, limit)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// once makes one connection and reads it to its end. opened tells whether the stream opened.
func (c *Client) once(ctx context.Context, hc *http.Client, handle func(Message)) (opened bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return false, fmt.Errorf("eventsource: %w", err)
	}
	for k, vs := range c.o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	lastID := c.LastEventID()
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		return false, &StatusError{StatusCode: resp.StatusCode, ContentType: ct}
	}
	if c.o.OnOpen != nil {
		c.o.OnOpen(resp)
	}
	dec := NewDecoder(resp.Body, c.o.MaxEventSize, lastID)
	defer c.update(dec)
	for {
		m, err := dec.Next()
		if err != nil {
			return true, err
		}
		c.update(dec)
		handle(m)
	}
}

// update takes the last event id and retry time the decoder has seen.
func (c *Client) update(dec *Decoder) {
	c.mu.Lock()
	c.lastID = dec.LastEventID()
	if r, ok := dec.Retry(); ok {
		c.retry = r
	}
	c.mu.Unlock()
}
