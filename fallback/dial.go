package fallback

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/websocket"
)

// Transport names, as Conn.Transport returns them.
const (
	TransportSSE  = "sse"
	TransportPoll = "poll"
)

// DialOptions configures Dial. A nil *DialOptions is valid and means all defaults.
type DialOptions struct {
	// Poll uses long-polling instead of an event stream, for proxies that buffer streamed
	// responses.
	Poll bool

	// Header holds extra headers for every request (Cookie, Authorization for a proxy in
	// front of the server).
	Header http.Header

	// Proxy selects the proxy for each request, as in http.Transport. Nil means
	// websocket.ProxyFromEnvironment: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY, loopback
	// included unless NO_PROXY names it (as curl does), so that a client's WebSocket and its
	// fallback take the same path.
	Proxy func(*http.Request) (*url.URL, error)

	// TLSConfig configures TLS to https servers. Nil means the defaults.
	TLSConfig *tls.Config

	// Jar, when set, supplies and keeps cookies (the nes authentication cookie).
	Jar http.CookieJar

	// OpenTimeout bounds the wait for the session's open event: a proxy that buffers the
	// stream keeps it from arriving, and the caller can then try Poll. Zero means 10 seconds.
	OpenTimeout time.Duration

	// HTTPClient, when set, makes the requests: Proxy, TLSConfig and Jar are then ignored. Its
	// Timeout must be zero (a stream lasts). Nil means a client of the Conn's own, closed with
	// it.
	HTTPClient *http.Client
}

// Conn is the client side of a session: whole text messages both ways, like a WebSocket,
// over an event stream (or long-polls) down and POSTs up. A stream that drops is resumed
// within the server's grace period without losing or repeating a message; Read fails only
// when the session has ended (the server closed it, or it could not be resumed: the caller
// then starts a new one).
//
// One goroutine at a time may Read; Write and Close are safe for concurrent use.
type Conn struct {
	base      string
	transport string
	hc        *http.Client
	ownClient bool
	header    http.Header

	ctx    context.Context // ends the session's goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	in chan []byte // messages down, in order

	mu        sync.Mutex
	info      openInfo
	lastSeq   uint64 // the last message down received
	nextBatch uint64 // the seq of the next batch up
	outbox    []string
	outSizes  []int         // the size of each outbox message in a batch: as JSON, with its comma
	outBytes  int           // the sum of outSizes
	inflight  int           // the outbox messages in the batch being posted
	outWake   chan struct{} // signals the sender, capacity 1
	err       error         // why the session ended
	ended     chan struct{}
	opened    chan struct{} // closed at the first open event
	isOpened  bool
}

// ErrWriteQueueFull is returned by Write when what waits to be sent would pass the server's
// maxBody (one POST's worth): the server is not taking messages as fast as they are written.
var ErrWriteQueueFull = errors.New("fallback: write queue full: more than one POST's worth (the server's maxBody) is waiting to be sent")

// ErrSessionEnded is what Read returns (wrapped) once the server has closed the session or it
// could not be resumed. Dial's error matches it too when no session could be opened (see
// Dial), so that one test covers "this Conn is done: open a new session".
var ErrSessionEnded = errors.New("fallback: session ended")

// openError is why Dial could not open a session: the first request, to url, failed before
// the server opened one (nothing listens there, a 404, a proxy's 502). It says so, where "the
// session ended" would speak of a session that never was. It unwraps to the cause, so that
// errors.Is(err, syscall.ECONNREFUSED) holds when nothing listens and errors.As finds the
// *url.Error, *eventsource.StatusError or *StatusError, and to ErrSessionEnded, which Dial's
// errors have always matched.
type openError struct {
	url string
	err error
}

func (e *openError) Error() string {
	cause := e.err
	var ue *url.Error
	if errors.As(cause, &ue) && ue.Err != nil {
		cause = ue.Err // without its "Get URL:", which repeats the URL named here
	}
	return "fallback: connecting to " + e.url + ": " + strings.TrimPrefix(cause.Error(), "fallback: ")
}

func (e *openError) Unwrap() []error { return []error{e.err, ErrSessionEnded} }

// ending is the error that ends the Conn because a request to endpoint failed with err (after
// "the stream could not be resumed", say, as how): the session ended, or, before the server
// opened one, Dial could not open it (an *openError).
func (c *Conn) ending(endpoint, how string, err error) error {
	c.mu.Lock()
	opened := c.isOpened
	c.mu.Unlock()
	if !opened {
		return &openError{url: c.base + "/" + endpoint, err: err}
	}
	if how != "" {
		return fmt.Errorf("%w: %s: %w", ErrSessionEnded, how, err)
	}
	return fmt.Errorf("%w: %w", ErrSessionEnded, err)
}

// CloseError is the close event of a session the server closed: its code is a WebSocket
// close code (1000 normal, 1001 going away, 1011 server error, 1013 the client was too slow).
type CloseError struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("fallback: the server closed the session: %d %s", e.Code, e.Reason)
}

// Unwrap lets errors.Is match ErrSessionEnded.
//
// It also unwraps to a *websocket.CloseError with the same code and reason, so that
// websocket.CloseStatus reads the code of a session as it reads a WebSocket's.
func (e *CloseError) Unwrap() []error {
	return []error{ErrSessionEnded, &websocket.CloseError{Code: websocket.StatusCode(e.Code), Reason: e.Reason}}
}

// StatusError is an unexpected answer of the server to a session's request.
type StatusError struct {
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fallback: the server answered %d: %s", e.StatusCode, e.Message)
}

// Dial opens a session with the server whose endpoints are under base (an http:// or https://
// URL such as "https://example.com/nes": the stream is base+"/sse"). It returns once the
// session's open event has arrived, within ctx and DialOptions.OpenTimeout.
//
// When the server cannot be reached or refuses the first request, the error names the URL
// and the cause ("fallback: connecting to http://127.0.0.1:8000/nes/sse: dial tcp
// 127.0.0.1:8000: connect: connection refused"); errors.Is and errors.As see the cause
// (syscall.ECONNREFUSED, *eventsource.StatusError, *StatusError), and it matches
// ErrSessionEnded. No open event in time matches context.DeadlineExceeded.
func Dial(ctx context.Context, base string, opts *DialOptions) (*Conn, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 10 * time.Second
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("fallback: invalid base URL %q: want http:// or https://", base)
	}
	c := &Conn{base: strings.TrimSuffix(base, "/"), transport: TransportSSE, header: o.Header.Clone(),
		in: make(chan []byte, 64), outWake: make(chan struct{}, 1), ended: make(chan struct{}), opened: make(chan struct{})}
	if o.Poll {
		c.transport = TransportPoll
	}
	c.hc = o.HTTPClient
	if c.hc == nil {
		proxy := o.Proxy
		if proxy == nil {
			proxy = websocket.ProxyFromEnvironment
		}
		c.hc = &http.Client{Jar: o.Jar, Transport: &http.Transport{Proxy: proxy, TLSClientConfig: o.TLSConfig,
			ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}}
		c.ownClient = true
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	if o.Poll {
		c.wg.Add(1)
		go c.pollLoop()
	} else {
		c.wg.Add(1)
		go c.streamLoop()
	}
	timer := time.NewTimer(o.OpenTimeout)
	defer timer.Stop()
	select {
	case <-c.opened:
		c.wg.Add(1)
		go c.sendLoop()
		return c, nil
	case <-c.ended:
		err = c.endErr()
	case <-timer.C:
		err = fmt.Errorf("fallback: no open event within %v: a proxy may be buffering the %s: %w", o.OpenTimeout, c.transport, context.DeadlineExceeded)
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.Close()
	return nil, err
}

// Transport names what carries the session: TransportSSE or TransportPoll.
func (c *Conn) Transport() string { return c.transport }

// Read returns the next message from the server.
func (c *Conn) Read(ctx context.Context) ([]byte, error) {
	select {
	case m := <-c.in:
		return m, nil
	default:
	}
	select {
	case m := <-c.in:
		return m, nil
	case <-c.ended:
		select {
		case m := <-c.in: // what arrived before the end
			return m, nil
		default:
		}
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Write queues one message for the server: messages go up in batches, one POST at a time, in
// order, each applied once however often a POST is retried. It fails once the session has
// ended, or when more than the server's maxBody waits unsent.
func (c *Conn) Write(ctx context.Context, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	size := jsonLen(msg) + 1
	if limit := int(c.info.MaxBody) - batchOverhead; size > limit {
		return fmt.Errorf("fallback: a message of %d bytes (%d in JSON) is larger than the server allows in one POST (%d bytes; Options.MaxBody)", len(msg), size-1, limit)
	}
	if c.outBytes+size > int(c.info.MaxBody) && c.outBytes > 0 {
		return ErrWriteQueueFull
	}
	c.outbox = append(c.outbox, string(msg))
	c.outSizes = append(c.outSizes, size)
	c.outBytes += size
	select {
	case c.outWake <- struct{}{}:
	default:
	}
	return nil
}

// Close ends the session: it tells the server (in a last POST, bounded by a second), then
// waits for the Conn's goroutines. A server that does not hear it ends the session after its
// grace period.
func (c *Conn) Close() error {
	c.mu.Lock()
	tell := c.err == nil && c.isOpened
	c.mu.Unlock()
	c.fail(ErrSessionEnded)
	c.wg.Wait()
	if tell {
		c.sayGoodbye()
	}
	if c.ownClient {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// fail ends the session with err, once.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.ended)
	c.cancel()
}

func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// handle takes one event down, from the stream or a poll. It reports false when the session
// has ended.
func (c *Conn) handle(event, id, data string) bool {
	switch event {
	case EventOpen:
		var info openInfo
		if err := json.Unmarshal([]byte(data), &info); err != nil || info.Ticket == "" {
			c.fail(fmt.Errorf("fallback: invalid open event %q", data))
			return false
		}
		c.mu.Lock()
		if c.isOpened && info.Ticket != c.info.Ticket {
			c.mu.Unlock()
			c.fail(fmt.Errorf("%w: the server opened another session (a reset)", ErrSessionEnded))
			return false
		}
		c.info = info
		if !c.isOpened {
			c.isOpened = true
			c.nextBatch = info.Seq
			close(c.opened)
		}
		c.mu.Unlock()
		return true
	case EventReset:
		c.fail(fmt.Errorf("%w: the session could not be resumed: %s", ErrSessionEnded, data))
		return false
	case EventClose:
		ce := &CloseError{}
		_ = json.Unmarshal([]byte(data), ce)
		c.fail(ce)
		return false
	case EventRotate, "":
		if event == EventRotate {
			return true
		}
	default:
		return true // an event type of a later version
	}
	_, seq, ok := parseEventID(id)
	c.mu.Lock()
	if !ok || seq <= c.lastSeq {
		c.mu.Unlock()
		return true // a message already delivered
	}
	c.lastSeq = seq
	c.mu.Unlock()
	select {
	case c.in <- []byte(data):
		return true
	case <-c.ctx.Done():
		return false
	}
}

// streamLoop reads the event stream, resuming it with Last-Event-ID when it drops, until the
// session ends or has been unreachable past its grace period.
func (c *Conn) streamLoop() {
	defer c.wg.Done()
	var downSince time.Time
	lastID := ""
	for {
		// A rotate event ends this stream on purpose: reconnect at once, where the client's own
		// reconnection would wait the retry time (seconds) first.
		rotated := false
		ctx, stop := context.WithCancel(c.ctx)
		es := eventsource.NewClient(c.base+"/"+EndpointStream, &eventsource.ClientOptions{
			Header:       c.header,
			HTTPClient:   c.hc,
			LastEventID:  lastID,
			MaxEventSize: 64 << 20,
			MaxRetry:     5 * time.Second,
			OnOpen:       func(*http.Response) { downSince = time.Time{} },
			OnError: func(err error) {
				c.mu.Lock()
				opened := c.isOpened
				c.mu.Unlock()
				if !opened || c.pastGrace(&downSince) {
					c.fail(c.ending(EndpointStream, "the stream could not be resumed", err))
				}
			},
		})
		err := es.Run(ctx, func(m eventsource.Message) {
			event := m.Type
			if event == "message" {
				event = ""
			}
			if event == EventRotate {
				rotated = true
				stop()
				return
			}
			if !c.handle(event, m.ID, m.Data) {
				c.cancel()
			}
		})
		stop()
		lastID = es.LastEventID()
		if c.ctx.Err() != nil {
			c.fail(fmt.Errorf("%w: %w", ErrSessionEnded, err))
			return
		}
		var se *eventsource.StatusError
		if !rotated && errors.As(err, &se) && gatewayError(se.StatusCode) && lastID != "" {
			// A proxy in front of the server answered the resume itself (its connection to the
			// server dropped too): try again, within the grace period, as after a network error.
			if !c.pastGrace(&downSince) {
				sleep(c.ctx, 200*time.Millisecond)
				continue
			}
		}
		if !rotated {
			c.fail(c.ending(EndpointStream, "", err))
			return
		}
	}
}

// gatewayError reports whether a status is a proxy's answer for a server it could not reach
// (502, 504), which says nothing of the session: a request that got it may be tried again.
func gatewayError(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusGatewayTimeout
}

// busy reports whether a status says the server cannot take the request now but may later: 429
// (another POST of the session is still being answered) or 503 (the session's inbox is full,
// the server is shutting down, or on a cluster the session's node did not answer). The request
// may be tried again.
func busy(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// pollLoop long-polls until the session ends.
func (c *Conn) pollLoop() {
	defer c.wg.Done()
	var downSince time.Time
	for c.ctx.Err() == nil {
		c.mu.Lock()
		ticket, last := c.info.Ticket, c.lastSeq
		c.mu.Unlock()
		var body any = struct{}{}
		if ticket != "" {
			body = map[string]uint64{"last": last}
		}
		var answer struct {
			Events []pollEvent `json:"events"`
		}
		status, err := c.post(EndpointPoll, ticket, body, &answer)
		if err == nil && status != http.StatusOK {
			err = &StatusError{StatusCode: status, Message: "poll"}
			if !busy(status) && !gatewayError(status) {
				c.fail(c.ending(EndpointPoll, "", err))
				return
			}
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			if ticket == "" || c.pastGrace(&downSince) {
				c.fail(c.ending(EndpointPoll, "", err))
				return
			}
			sleep(c.ctx, 200*time.Millisecond)
			continue
		}
		downSince = time.Time{}
		for _, e := range answer.Events {
			if !c.handle(e.Event, e.ID, e.Data) {
				return
			}
		}
	}
}

// batchOverhead is the most a batch's JSON takes beside its messages: {"seq":N,"messages":[],
// "ack":N,"close":true} with 20-digit numbers.
const batchOverhead = 96

// sendLoop posts what Write queued, one batch at a time, each within the server's maxBody
// once encoded.
func (c *Conn) sendLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.outWake:
		case <-c.ctx.Done():
			return
		}
		for {
			c.mu.Lock()
			seq := c.nextBatch
			n, size := 0, 0
			for n < len(c.outbox) && n < c.info.MaxMessages && size+c.outSizes[n] <= int(c.info.MaxBody)-batchOverhead {
				size += c.outSizes[n]
				n++
			}
			if n == 0 {
				c.mu.Unlock()
				break
			}
			msgs := append([]string(nil), c.outbox[:n]...)
			ack := c.lastSeq
			ticket := c.info.Ticket
			c.inflight = n
			c.mu.Unlock()
			if !c.postBatch(ticket, batch{Seq: seq, Messages: msgs, Ack: &ack}) {
				return
			}
			c.mu.Lock()
			c.inflight = 0
			c.nextBatch++
			c.outbox = c.outbox[n:]
			c.outSizes = c.outSizes[n:]
			c.outBytes -= size
			c.mu.Unlock()
		}
	}
}

// postBatch posts one batch until the server has it, retrying what may be retried (the server
// drops a batch it already applied). It reports false when the session has ended.
func (c *Conn) postBatch(ticket string, b batch) bool {
	var downSince time.Time
	for c.ctx.Err() == nil {
		status, err := c.post(EndpointSend, ticket, b, nil)
		switch {
		case err == nil && status == http.StatusNoContent:
			return true
		case err == nil && busy(status):
			// Busy, or (on a cluster) the session's node did not answer the node that took the
			// POST: retry, within the grace period, as after a network error.
			err = &StatusError{StatusCode: status, Message: "send"}
			if c.pastGrace(&downSince) {
				c.fail(fmt.Errorf("%w: %w", ErrSessionEnded, err))
				return false
			}
			sleep(c.ctx, 100*time.Millisecond)
			continue
		case err == nil && gatewayError(status):
			err = &StatusError{StatusCode: status, Message: "send"} // as a network error: retry within the grace
		case err == nil && status == http.StatusGone:
			// The session ended, and the stream or the next poll is about to bring what the
			// server sent before the end, and its close event: let it, for a while, rather than
			// fail with the 410 and lose them.
			gone := fmt.Errorf("%w: %w", ErrSessionEnded, &StatusError{StatusCode: status, Message: "send"})
			timer := time.NewTimer(endedWait)
			defer timer.Stop()
			select {
			case <-c.ended:
			case <-timer.C:
				c.fail(gone)
			}
			return false
		case err == nil:
			c.fail(fmt.Errorf("%w: %w", ErrSessionEnded, &StatusError{StatusCode: status, Message: "send"}))
			return false
		}
		if c.pastGrace(&downSince) {
			c.fail(fmt.Errorf("%w: %w", ErrSessionEnded, err))
			return false
		}
		sleep(c.ctx, 200*time.Millisecond)
	}
	return false
}

// pastGrace starts *downSince now if it is not already running, and reports whether it has
// run longer than the grace period the server announced at open, after which the session is gone.
func (c *Conn) pastGrace(downSince *time.Time) bool {
	if downSince.IsZero() {
		*downSince = time.Now()
	}
	c.mu.Lock()
	grace := time.Duration(c.info.Grace) * time.Millisecond
	c.mu.Unlock()
	return time.Since(*downSince) > grace
}

// endedWait is how long a Conn whose POST was answered 410 waits for the stream or poll to
// deliver the session's last messages and close event.
const endedWait = 3 * time.Second

// sayGoodbye posts the batch that closes the session, after whatever was still unsent.
func (c *Conn) sayGoodbye() {
	c.mu.Lock()
	seq, msgs, inflight := c.nextBatch, c.outbox, c.inflight
	ticket := c.info.Ticket
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	post := func(b batch) bool {
		for {
			status, err := c.postWith(ctx, EndpointSend, ticket, b, nil)
			if err == nil && busy(status) {
				sleep(ctx, 50*time.Millisecond)
				continue
			}
			return err == nil && status == http.StatusNoContent
		}
	}
	if inflight > 0 && inflight < len(msgs) {
		// The batch being posted when Close came may have been applied: post it again as it
		// was (the server drops it then), so that what was written after it goes in the next
		// batch rather than in a retry that the server would drop.
		if !post(batch{Seq: seq, Messages: msgs[:inflight]}) {
			return
		}
		seq, msgs = seq+1, msgs[inflight:]
	}
	for len(msgs) > c.info.MaxMessages { // what was still unsent, a POST's worth at a time
		if !post(batch{Seq: seq, Messages: msgs[:c.info.MaxMessages]}) {
			msgs = nil // say goodbye all the same, without the rest
			break
		}
		seq, msgs = seq+1, msgs[c.info.MaxMessages:]
	}
	if !post(batch{Seq: seq, Messages: msgs, Close: true}) && len(msgs) > 0 {
		post(batch{Seq: seq, Close: true})
	}
}

// post sends one JSON POST to an endpoint and decodes a 200 answer into out.
func (c *Conn) post(endpoint, ticket string, body, out any) (int, error) {
	return c.postWith(c.ctx, endpoint, ticket, body, out)
}

func (c *Conn) postWith(ctx context.Context, endpoint, ticket string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+endpoint, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if ticket != "" {
		req.Header.Set("Herald-Ticket", ticket)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(out); err != nil {
			return 0, fmt.Errorf("fallback: invalid answer from %s: %w", endpoint, err)
		}
		return resp.StatusCode, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
