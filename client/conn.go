package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/internal/protocol"
)

// conn is one connection to the server: its transport, the calls waiting for their replies,
// the heartbeat watch and the goroutine that reads it. A Client makes a new one for every
// connection; a conn that has ended is never used again.
type conn struct {
	c   *Client
	t   transport
	asm protocol.Assembler

	mu      sync.Mutex
	pending map[uint64]chan reply
	err     error // why the connection ended, once it has

	readerDone chan struct{}

	// heartbeat is the server's interval + timeout (zero: the server sends no pings);
	// lastRead is when the last frame arrived, in UnixNano.
	heartbeat time.Duration
	lastRead  atomic.Int64
	hbTimer   *time.Timer
}

// reply is what a call waits for: the server's answer, or why none will come.
type reply struct {
	msg *protocol.Message
	err error
}

// outMessage is a message to the server. Fields left zero are left out, as the reference
// client leaves undefined fields out.
type outMessage struct {
	Type    string            `json:"type"`
	ID      uint64            `json:"id"`
	Version string            `json:"version,omitempty"`
	Auth    *Auth             `json:"auth,omitempty"`
	Subs    []string          `json:"subs,omitempty"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Payload any               `json:"payload,omitempty"`
	Message any               `json:"message,omitempty"`
}

func newConn(c *Client, t transport) *conn {
	cn := &conn{c: c, t: t, pending: map[uint64]chan reply{}, readerDone: make(chan struct{})}
	cn.asm.Limit = c.opts.MaxMessageBytes
	return cn
}

// readLoop reads the connection until it ends.
func (cn *conn) readLoop() {
	defer close(cn.readerDone)
	for {
		data, err := cn.t.read(context.Background())
		if errors.Is(err, errNotText) {
			cn.c.reportError(newError(KindProtocol, "the server sent a binary message", err))
			continue
		}
		if err != nil {
			cn.end(err)
			return
		}
		cn.lastRead.Store(time.Now().UnixNano())
		msg, err := cn.asm.Add(data)
		switch {
		case errors.Is(err, protocol.ErrChunkTooLarge):
			tooLarge := newError(KindProtocol, "a chunked message grew past Options.MaxMessageBytes", err)
			cn.c.reportError(tooLarge)
			cn.end(tooLarge)
			return
		case err != nil: // protocol.ErrIncomplete: msg is the whole message that cut in
			cn.c.reportError(newError(KindProtocol, "Received an incomplete message", err))
		}
		if msg != nil {
			cn.handle(msg)
		}
	}
}

// handle dispatches one whole message from the server.
func (cn *conn) handle(data []byte) {
	m, err := protocol.Decode(data)
	if err != nil {
		cn.c.reportError(newError(KindProtocol, "the server sent a message that is not a JSON object", err))
		return
	}
	typ, _ := protocol.String(m.Type)
	switch typ {
	case "ping":
		// Answered from here: a reply the server waits for must not queue behind callbacks.
		ctx, cancel := context.WithTimeout(context.Background(), cn.c.opts.ConnectTimeout)
		_ = cn.send(ctx, &outMessage{Type: "ping", ID: cn.c.ids.Add(1)})
		cancel()
		return
	case "update":
		cn.c.deliverUpdate(m.Message)
		return
	case "pub", "revoke":
		path, _ := protocol.String(m.Path)
		cn.c.deliverPublication(path, m.Message, typ == "revoke")
		return
	}
	id, err := strconv.ParseUint(string(m.ID), 10, 64)
	cn.mu.Lock()
	ch, ok := cn.pending[id]
	delete(cn.pending, id)
	cn.mu.Unlock()
	if err != nil || !ok {
		cn.c.reportError(newError(KindProtocol, "Received response for unknown request", nil))
		return
	}
	ch <- reply{msg: m, err: replyError(m)}
}

// replyError returns the error a reply carries (a status of 400 or more), or nil.
func replyError(m *protocol.Message) error {
	status, _ := strconv.Atoi(string(m.StatusCode))
	if status < 400 {
		return nil
	}
	var p struct {
		Error   any `json:"error"`
		Message any `json:"message"`
	}
	_ = json.Unmarshal(m.Payload, &p)
	msg := "Error"
	for _, v := range []any{p.Message, p.Error} {
		if s, ok := v.(string); ok && s != "" {
			msg = s
			break
		}
	}
	e := &Error{Kind: KindServer, Message: msg, StatusCode: status, Headers: replyHeaders(m.Headers)}
	if len(m.Payload) > 0 {
		e.Payload = append(json.RawMessage(nil), m.Payload...)
	}
	e.Path, _ = protocol.String(m.Path)
	return e
}

// replyHeaders turns a reply's headers object into an http.Header: strings as one value,
// arrays as several, anything else as its JSON text. Nil when there are none.
func replyHeaders(raw json.RawMessage) http.Header {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil || len(obj) == 0 {
		return nil
	}
	h := make(http.Header, len(obj))
	for name, v := range obj {
		var list []json.RawMessage
		if json.Unmarshal(v, &list) != nil {
			list = []json.RawMessage{v}
		}
		for _, item := range list {
			s, ok := protocol.String(item)
			if !ok {
				s = string(item)
			}
			h.Add(name, s)
		}
	}
	return h
}

// send writes one message without waiting for a reply.
func (cn *conn) send(ctx context.Context, m *outMessage) error {
	data, err := encode(m)
	if err != nil {
		return newError(KindUser, "the message cannot be encoded as JSON", err)
	}
	if err := cn.t.write(ctx, data); err != nil {
		return newError(KindDisconnect, "Failed to send message - server disconnected", err)
	}
	return nil
}

// call sends m with a fresh id and waits for its reply, for timeout when positive and for
// ctx.
func (cn *conn) call(ctx context.Context, m *outMessage, timeout time.Duration) (*protocol.Message, error) {
	m.ID = cn.c.ids.Add(1)
	ch := make(chan reply, 1)
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return nil, newError(KindDisconnect, "Failed to send message - server disconnected", cn.err)
	}
	cn.pending[m.ID] = ch
	cn.mu.Unlock()
	if err := cn.send(ctx, m); err != nil {
		cn.forget(m.ID)
		return nil, err
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-expired:
		cn.forget(m.ID)
		return nil, newError(KindTimeout, "Request timed out", nil)
	case <-ctx.Done():
		cn.forget(m.ID)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, newError(KindTimeout, "Request timed out", ctx.Err())
		}
		return nil, ctx.Err()
	}
}

func (cn *conn) forget(id uint64) {
	cn.mu.Lock()
	delete(cn.pending, id)
	cn.mu.Unlock()
}

// end closes the connection (normally when why is errRequested), fails every pending call and
// tells the client. Only the first call counts.
func (cn *conn) end(why error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = why
	pending := cn.pending
	cn.pending = nil
	if cn.hbTimer != nil {
		cn.hbTimer.Stop()
	}
	cn.mu.Unlock()

	if errors.Is(why, errRequested) {
		cn.t.close(nil)
	} else {
		cn.t.close(why)
	}
	failed := newError(KindDisconnect, "Request failed - server disconnected", why)
	for _, ch := range pending {
		ch <- reply{err: failed}
	}
	cn.c.connLost(cn, why)
}

// errRequested is why a connection ends when the application disconnects.
var errRequested = ErrClosed

// watchHeartbeat starts the heartbeat watch with the server's interval + timeout: a
// connection silent for that long has lost its server.
func (cn *conn) watchHeartbeat(window time.Duration) {
	if window <= 0 {
		return
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return
	}
	cn.heartbeat = window
	cn.lastRead.Store(time.Now().UnixNano())
	cn.hbTimer = time.AfterFunc(window, cn.checkHeartbeat)
}

// checkHeartbeat runs when the window may have passed: it re-arms for what is left of it
// after the last frame, or ends the connection. Re-arming here, rather than resetting a timer
// on every frame, keeps the read path free of timer work.
func (cn *conn) checkHeartbeat() {
	silent := time.Since(time.Unix(0, cn.lastRead.Load()))
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	if silent < cn.heartbeat {
		cn.hbTimer.Reset(cn.heartbeat - silent)
		cn.mu.Unlock()
		return
	}
	cn.mu.Unlock()
	cn.c.heartbeatTimeout(cn)
	cn.end(newError(KindTimeout, "Disconnecting due to heartbeat timeout", ErrHeartbeatTimeout))
}
