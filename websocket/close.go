package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// StatusCode is a WebSocket close code (RFC 6455 §7.4).
type StatusCode int

// Close codes from RFC 6455 §7.4.1 and the IANA registry.
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupportedData StatusCode = 1003
	// StatusNoStatusRcvd is reported when a close frame carried no code. It is never sent.
	StatusNoStatusRcvd StatusCode = 1005
	// StatusAbnormalClosure is reported when the connection ended without a close frame. It is
	// never sent.
	StatusAbnormalClosure     StatusCode = 1006
	StatusInvalidFramePayload StatusCode = 1007
	StatusPolicyViolation     StatusCode = 1008
	StatusMessageTooBig       StatusCode = 1009
	StatusMandatoryExtension  StatusCode = 1010
	StatusInternalError       StatusCode = 1011
	StatusServiceRestart      StatusCode = 1012
	StatusTryAgainLater       StatusCode = 1013
	StatusBadGateway          StatusCode = 1014
	// StatusTLSHandshake is reserved for a failed TLS handshake. It is never sent.
	StatusTLSHandshake StatusCode = 1015
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:       "normal closure",
	StatusGoingAway:           "going away",
	StatusProtocolError:       "protocol error",
	StatusUnsupportedData:     "unsupported data",
	StatusNoStatusRcvd:        "no status",
	StatusAbnormalClosure:     "abnormal closure",
	StatusInvalidFramePayload: "invalid frame payload",
	StatusPolicyViolation:     "policy violation",
	StatusMessageTooBig:       "message too big",
	StatusMandatoryExtension:  "mandatory extension",
	StatusInternalError:       "internal error",
	StatusServiceRestart:      "service restart",
	StatusTryAgainLater:       "try again later",
	StatusBadGateway:          "bad gateway",
	StatusTLSHandshake:        "TLS handshake",
}

// String returns the code and its registered name, such as "1000 (normal closure)".
func (c StatusCode) String() string {
	if name, ok := statusNames[c]; ok {
		return strconv.Itoa(int(c)) + " (" + name + ")"
	}
	return strconv.Itoa(int(c))
}

// sendable reports whether the code may appear in a close frame on the wire: the codes
// registered for use in frames (1000-1003, 1007-1014) and those for libraries, frameworks and
// applications (3000-4999). 1004-1006 and 1015 are reserved and never sent.
func (c StatusCode) sendable() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// maxCloseReason is the longest reason a close frame can carry: 125 bytes of control payload
// minus the two-byte code.
const maxCloseReason = 123

// CloseError is returned by Read once the connection has closed from the other side: it
// carries the code and reason of the peer's close frame (StatusNoStatusRcvd for a close frame
// without a code), or StatusAbnormalClosure (1006) when the connection ended without one, as a
// browser's CloseEvent reports it.
type CloseError struct {
	Code   StatusCode // the peer's close code
	Reason string     // the peer's close reason, possibly empty
	err    error      // the network error behind StatusAbnormalClosure
}

// Unwrap returns the network error that ended a connection without a close frame.
func (e *CloseError) Unwrap() error { return e.err }

// Error says how the peer closed the connection, or that it was lost without a close frame.
func (e *CloseError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("websocket: connection lost without a close frame: %v", e.err)
	}
	if e.Reason == "" {
		return fmt.Sprintf("websocket: closed by peer: %v", e.Code)
	}
	return fmt.Sprintf("websocket: closed by peer: %v %q", e.Code, e.Reason)
}

// ProtocolError reports that the peer broke RFC 6455 or one of the connection's limits. The
// connection has been failed: Code (1002, 1007, 1009 ...) was sent to the peer in a close frame
// and the connection closed.
type ProtocolError struct {
	Code   StatusCode // the close code sent to the peer
	Reason string     // what the peer did wrong
}

// Error says what the peer did wrong and the code the connection was closed with.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: %s (closed with %v)", e.Reason, e.Code)
}

// CloseStatus returns the code of the close frame the peer sent, when err (or an error it
// wraps) is a *CloseError, and -1 otherwise.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// Errors returned by Conn methods. Match them with errors.Is.
var (
	// ErrClosed is returned by calls made after the connection was closed (by Close, by the
	// peer, or after a failure). Read reports the reason for the close instead, once.
	ErrClosed = errors.New("websocket: connection closed")
	// ErrCloseSent is returned by writes of data after Close has sent a close frame.
	ErrCloseSent = errors.New("websocket: close frame already sent")
	// ErrPongTimeout is the reason a connection is closed when a ping sent by PingInterval is not
	// answered within PongTimeout.
	ErrPongTimeout = errors.New("websocket: no pong within the pong timeout")
	// ErrWriteQueueFull is returned by a write that would put more than WriteQueueLimit bytes
	// in the connection's write queue. Options.WriteQueueLimit says what the peer sees when the
	// connection is then closed.
	ErrWriteQueueFull = errors.New("websocket: write queue full (see Options.WriteQueueLimit)")
)

// closePayload builds the payload of a close frame. StatusNoStatusRcvd gives an empty payload.
func closePayload(dst []byte, code StatusCode, reason string) []byte {
	if code == StatusNoStatusRcvd {
		return dst[:0]
	}
	dst = binary.BigEndian.AppendUint16(dst[:0], uint16(code))
	return append(dst, reason...)
}

// parseClosePayload decodes a received close frame's payload, checking it as RFC 6455 §5.5.1
// and §7.4 require.
func parseClosePayload(p []byte) (*CloseError, *ProtocolError) {
	switch {
	case len(p) == 0:
		return &CloseError{Code: StatusNoStatusRcvd}, nil
	case len(p) == 1:
		return nil, &ProtocolError{Code: StatusProtocolError, Reason: "close frame with a one-byte payload"}
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !code.sendable() {
		return nil, &ProtocolError{Code: StatusProtocolError, Reason: fmt.Sprintf("close frame with invalid code %d", int(code))}
	}
	if !utf8.Valid(p[2:]) {
		return nil, &ProtocolError{Code: StatusInvalidFramePayload, Reason: "close reason is not valid UTF-8"}
	}
	return &CloseError{Code: code, Reason: string(p[2:])}, nil
}

// truncateReason shortens reason to what a close frame holds, on a character boundary.
func truncateReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	cut := maxCloseReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// Close performs the closing handshake: it sends a close frame with code and reason, waits up
// to Options.CloseTimeout for the peer's close frame, and closes the connection. The close
// frame goes out after the frame being written, if any, and ahead of the data messages still
// waiting, whose writes fail with ErrCloseSent; when the frame being written cannot finish
// within CloseTimeout (a peer that stopped reading), the connection is closed without a close
// frame and Close returns a *CloseError with StatusAbnormalClosure. code must be
// one that may be sent (1000-1003, 1007-1014, 3000-4999), or StatusNoStatusRcvd for a close
// frame without a code; reason must be UTF-8 and is cut to 123 bytes.
//
// Close may be called from any goroutine, any number of times; calls after the first wait for
// the first to finish and return ErrClosed. When another goroutine is blocked in Read, that
// Read receives the peer's close frame and returns a *CloseError; otherwise Close reads what
// the peer still sends until its close frame arrives, and keeps the data messages (up to
// 1 MiB) for later calls to Read, which return them before reporting the close.
func (c *Conn) Close(code StatusCode, reason string) error {
	if code != StatusNoStatusRcvd && !code.sendable() {
		return fmt.Errorf("websocket: close code %d may not be sent (RFC 6455 §7.4)", int(code))
	}
	if !utf8.ValidString(reason) {
		return errors.New("websocket: close reason is not valid UTF-8")
	}
	if code == StatusNoStatusRcvd {
		reason = ""
	}
	if !c.closeSent.CompareAndSwap(false, true) {
		<-c.closing.done()
		return ErrClosed
	}
	var buf [125]byte
	payload := closePayload(buf[:], code, truncateReason(reason))
	deadline := time.Now().Add(c.opts.CloseTimeout)
	if err := c.writeControl(ws.OpClose, payload, deadline); err != nil {
		c.shut(ErrClosed)
		return err
	}
	c.awaitPeerClose(deadline)
	c.shut(ErrClosed)
	return nil
}

// CloseNow closes the connection at once, without a closing handshake: the peer sees the
// connection drop (1006). Blocked reads and writes return. Use it for peers that misbehave or
// stopped reading; Close is the polite way.
func (c *Conn) CloseNow() error {
	if c.isClosed() {
		return ErrClosed
	}
	c.closeSent.Store(true)
	c.shut(ErrClosed)
	return nil
}

// awaitPeerClose waits until the peer's close frame has been read, by the goroutine that is
// reading or, when none is, by this one.
func (c *Conn) awaitPeerClose(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if c.lock(ctx, &c.readMu) != nil {
		return // the connection closed, or the deadline passed, while another goroutine read
	}
	defer c.readMu.unlock()
	c.rdeadline.begin(ctx, time.Time{})
	defer func() { c.rdeadline.end(c.firstFrame) }() // firstFrame may change meanwhile
	// Data messages that arrive meanwhile are kept for the next Read, up to a bound: the
	// application may have been about to read them.
	kept := 0
	for {
		keep := kept < maxLateBytes
		typ, err := c.readMessageLocked(ctx, keep)
		if err != nil {
			return
		}
		msg := c.rd.msg[c.rd.msgStart:]
		c.rd.msg, c.rd.msgStart = nil, 0
		if !keep {
			continue
		}
		if c.rd.rsv != 0 {
			if msg, err = c.decode(typ, msg); err != nil {
				return
			}
		}
		kept += len(msg)
		if c.late == nil {
			c.late = new([]lateMessage)
		}
		*c.late = append(*c.late, lateMessage{typ: typ, data: msg})
	}
}

// maxLateBytes bounds the data messages Close keeps, while it waits for the peer's close
// frame, for a later Read.
const maxLateBytes = 1 << 20

// lateMessage is a data message read by Close, held for the next Read.
type lateMessage struct {
	typ  MessageType
	data []byte
}

// shut closes the network connection once, recording why. Pending and later calls report err.
func (c *Conn) shut(err error) {
	// Out of the registry before the signal fires: a Close or CloseAll waiting on it then finds
	// the registry without c (Registry.Len is 0 when Shutdown returns).
	if !c.closing.fire(func() {
		c.err = err
		if c.registry != nil {
			c.registry.remove(c)
		}
	}) {
		return
	}
	c.stopPings()
	_ = c.conn.Close()
	c.meterClose(err)
}

// closeSignal says that a connection has closed: a flag to test and, for those who wait, a
// channel, made only when someone asks for it (most connections never need one).
type closeSignal struct {
	mu  sync.Mutex
	set atomic.Bool
	ch  chan struct{}
}

// fire sets the signal, after running record, and reports whether this call set it (only the
// first does).
func (s *closeSignal) fire(record func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set.Load() {
		return false
	}
	record()
	s.set.Store(true)
	if s.ch != nil {
		close(s.ch)
	}
	return true
}

// isSet reports whether the signal has fired; what record wrote is then visible.
func (s *closeSignal) isSet() bool { return s.set.Load() }

// done returns a channel closed when the signal fires.
func (s *closeSignal) done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
		if s.set.Load() {
			close(s.ch)
		}
	}
	return s.ch
}

// fail sends a close frame for a protocol failure, best effort, and closes the connection.
// It is called by the reader.
func (c *Conn) fail(perr *ProtocolError) error {
	if c.closeSent.CompareAndSwap(false, true) {
		var buf [125]byte
		payload := closePayload(buf[:], perr.Code, truncateReason(perr.Reason))
		if c.writeControl(ws.OpClose, payload, time.Now().Add(failWriteTimeout)) == nil {
			c.lingerAfterClose()
		}
	}
	c.shut(perr)
	return perr
}

// failWriteTimeout bounds the close frame sent when failing a connection: the peer is already
// misbehaving and may not be reading. failLinger bounds the wait for the peer to take it in.
const (
	failWriteTimeout = time.Second
	failLinger       = time.Second
)

// lingerAfterClose lets the peer read the close frame just sent before the connection closes.
// Closing a socket that still has unread input makes the kernel reset the connection, and a
// reset can destroy the close frame before the peer reads it: a client still sending a large
// message would see an abnormal closure instead of 1009. So: send FIN, then discard what the
// peer still sends until it closes too, for at most failLinger.
func (c *Conn) lingerAfterClose() {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(failLinger))
	var buf [2048]byte
	for {
		if _, err := c.conn.Read(buf[:]); err != nil {
			return
		}
	}
}
