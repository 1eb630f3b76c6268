package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/websocket"
)

// The transports a client can use (Options.Transports).
const (
	// TransportWebSocket carries nes over a WebSocket, one message per text frame.
	TransportWebSocket = "websocket"
	// TransportSSE carries nes over an event stream down and POSTs up (package fallback),
	// for networks that block WebSocket.
	TransportSSE = fallback.TransportSSE
	// TransportPoll carries nes over long-polls down and POSTs up, for proxies that buffer
	// event streams.
	TransportPoll = fallback.TransportPoll
)

// transport is one connection's message channel, whatever carries it: whole text messages
// both ways, each read into a buffer of its own (replies and updates point into it). One
// goroutine reads; writes may come from many.
type transport interface {
	read(ctx context.Context) ([]byte, error)
	write(ctx context.Context, msg []byte) error
	// close ends the connection: normally (a WebSocket close handshake) when err is nil, at
	// once otherwise.
	close(err error)
	name() string
}

// wsTransport is a transport over a WebSocket.
type wsTransport struct {
	c *websocket.Conn
}

// dialWebSocket opens the WebSocket, with the jar's cookies for the URL added to the
// handshake's headers.
func dialWebSocket(ctx context.Context, rawURL string, opts *websocket.DialOptions, jar http.CookieJar) (transport, error) {
	if jar != nil {
		var dialOpts websocket.DialOptions
		if opts != nil {
			dialOpts = *opts
		}
		dialOpts.Header = dialOpts.Header.Clone()
		if dialOpts.Header == nil {
			dialOpts.Header = http.Header{}
		}
		if u, err := httpURL(rawURL); err == nil {
			for _, c := range jar.Cookies(u) {
				dialOpts.Header.Add("Cookie", c.String())
			}
		}
		opts = &dialOpts
	}
	c, _, err := websocket.Dial(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	return &wsTransport{c: c}, nil
}

// dialFallback opens a fallback session (TransportSSE or TransportPoll).
func dialFallback(ctx context.Context, name, base string, o *Options, openTimeout time.Duration) (transport, error) {
	opts := &fallback.DialOptions{Poll: name == TransportPoll, Jar: o.Jar, OpenTimeout: openTimeout}
	if d := o.Dial; d != nil {
		opts.Proxy, opts.TLSConfig, opts.Header = d.Proxy, d.TLSConfig, d.Header
	}
	c, err := fallback.Dial(ctx, base, opts)
	if err != nil {
		return nil, err
	}
	return &fallbackTransport{c: c}, nil
}

// fallbackURL derives the base of the fallback endpoints from the nes URL.
func fallbackURL(rawURL string) (string, error) {
	u, err := httpURL(rawURL)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/nes"
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// fallbackTransport is a transport over a fallback session.
type fallbackTransport struct {
	c *fallback.Conn
}

func (t *fallbackTransport) read(ctx context.Context) ([]byte, error) { return t.c.Read(ctx) }
func (t *fallbackTransport) write(ctx context.Context, msg []byte) error {
	return t.c.Write(ctx, msg)
}
func (t *fallbackTransport) close(error)  { _ = t.c.Close() }
func (t *fallbackTransport) name() string { return t.c.Transport() }

// httpURL maps ws:// and wss:// to http:// and https://, as cookies and token endpoints see
// the server.
func httpURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	return u, nil
}

func (t *wsTransport) read(ctx context.Context) ([]byte, error) {
	typ, data, err := t.c.Read(ctx)
	if err == nil && typ != websocket.MessageText {
		// nes is text: a binary message is reported and skipped.
		return data, errNotText
	}
	return data, err
}

var errNotText = errors.New("client: the server sent a binary message; nes messages are text")

func (t *wsTransport) write(ctx context.Context, msg []byte) error {
	return t.c.Write(ctx, websocket.MessageText, msg)
}

func (t *wsTransport) close(err error) {
	if err == nil {
		_ = t.c.Close(websocket.StatusNormalClosure, "")
		return
	}
	_ = t.c.CloseNow()
}

func (t *wsTransport) name() string { return TransportWebSocket }
