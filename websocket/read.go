package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/herald-go/herald/extensions"
)

// readState is where reading stands between frames and between calls, so that a Read cut
// short by its context resumes where it stopped.
type readState struct {
	remain   int64 // payload bytes of the current frame not yet read
	total    int64 // bytes announced so far for the message, across its frames
	maskPos  int
	msg      []byte // what Read has assembled of the message, from msgStart on
	msgStart int
	ctrl     *[125]byte // a control frame's payload; made for the first one
	typ      MessageType
	mask     [4]byte
	utf8     utf8Checker // 5 bytes: beside mask and the flags, no padding
	inMsg    bool        // a data message has started and not ended
	fin      bool        // the current frame ends the message
	masked   bool
	rsv      byte // reserved bits of the message's first frame: an extension encoded it
}

// Read reads the next whole data message, reassembling fragments and handling the control
// frames that come before and between them (answering pings, settling pings with pongs,
// completing the closing handshake). The returned slice belongs to the caller.
//
// When the peer closes, Read returns a *CloseError with the peer's code and reason (see
// CloseStatus); when the peer breaks the protocol or a limit, Read fails the connection with
// the matching close code and returns a *ProtocolError. When ctx ends first, Read returns
// ctx.Err() and the connection stays usable: the next Read continues the same message.
//
// Only one goroutine may read at a time.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	typ, msg, err := c.ReadAppend(ctx, nil)
	if err == nil && msg == nil {
		msg = []byte{}
	}
	return typ, msg, err
}

// ReadAppend is Read that appends the message to dst and returns the extended slice, so that
// a loop reusing one buffer reads without allocating:
//
//	typ, buf, err = c.ReadAppend(ctx, buf[:0])
//
// On an error the returned slice is dst. A message continued after a Read or ReadAppend cut
// short by its context is appended to the dst of the call that completes it.
func (c *Conn) ReadAppend(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	// No defers here: this frame is on the stack while an idle connection waits, and a
	// small one lets the goroutine park on the runtime's smallest stack.
	if err := c.lock(ctx, &c.readMu); err != nil {
		return 0, dst, err
	}
	c.rdeadline.begin(ctx, c.firstFrame)
	var err error
	if c.late == nil {
		err = c.waitIdle(ctx)
	}
	typ := MessageType(0)
	msg := dst
	if err == nil {
		typ, msg, err = c.readLocked(ctx, dst)
	}
	c.rdeadline.end(c.firstFrame)
	c.readMu.unlock()
	c.meterIn(len(msg)-len(dst), err)
	return typ, msg, err
}

// popLate takes the oldest message Close kept for a later read.
func (c *Conn) popLate() (lateMessage, bool) {
	if c.late == nil {
		return lateMessage{}, false
	}
	q := *c.late
	m := q[0]
	if len(q) == 1 {
		c.late = nil
	} else {
		*c.late = q[1:]
	}
	return m, true
}

// readLocked is ReadAppend once the next bytes are there (see waitIdle).
func (c *Conn) readLocked(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	if m, ok := c.popLate(); ok {
		if dst == nil {
			return m.typ, m.data, nil
		}
		return m.typ, append(dst, m.data...), nil
	}
	// A message cut short by a context has its first part in the buffer of the call that
	// started it; otherwise the message goes straight into dst.
	resumed := c.rd.inMsg && c.rd.msg != nil
	if !resumed {
		c.rd.msg, c.rd.msgStart = dst, len(dst)
	}
	typ, err := c.readMessageLocked(ctx, true)
	if err != nil {
		return 0, dst, err
	}
	msg, start := c.rd.msg, c.rd.msgStart
	c.rd.msg, c.rd.msgStart = nil, 0
	if c.rd.rsv != 0 {
		decoded, err := c.decode(typ, msg[start:])
		if err != nil {
			return 0, dst, err
		}
		if start == 0 && !resumed {
			return typ, decoded, nil
		}
		msg = append(msg[:start], decoded...)
	}
	if resumed {
		msg = append(dst, msg[start:]...)
	}
	return typ, msg, nil
}

// decode runs a message that an extension encoded through the negotiated extensions, and
// checks the decoded text.
func (c *Conn) decode(typ MessageType, raw []byte) ([]byte, error) {
	m := extensions.Message{Text: typ == MessageText, RSV: extensions.RSV(c.rd.rsv), Data: raw, Limit: c.opts.MaxLength}
	if err := c.ext.Decode(&m); err != nil {
		if errors.Is(err, extensions.ErrTooBig) {
			return nil, c.fail(&ProtocolError{Code: StatusMessageTooBig, Reason: fmt.Sprintf(
				"message decodes to more than MaxLength (%d) bytes", c.opts.MaxLength)})
		}
		return nil, c.fail(&ProtocolError{Code: StatusInvalidFramePayload, Reason: err.Error()})
	}
	if m.RSV != 0 {
		return nil, c.fail(&ProtocolError{Code: StatusProtocolError, Reason: "reserved bits no extension decoded"})
	}
	if typ == MessageText && !utf8.Valid(m.Data) {
		return nil, c.fail(&ProtocolError{Code: StatusInvalidFramePayload, Reason: "invalid UTF-8 in a text message"})
	}
	return m.Data, nil
}

// waitIdle waits for the next bytes when the connection is between messages with nothing
// buffered, from this shallow call rather than deep in the frame parser: an idle connection's
// goroutine then parks on a small stack, which the runtime can keep at its minimum size.
func (c *Conn) waitIdle(ctx context.Context) error {
	if c.rd.inMsg || c.rb.r < c.rb.w {
		return nil
	}
	if err := c.rb.fill(); err != nil {
		return c.readFailed(ctx, err)
	}
	return nil
}

// readMessageLocked reads the rest of the current message, or the next one, collecting its
// payload in c.rd.msg or discarding it.
func (c *Conn) readMessageLocked(ctx context.Context, collect bool) (MessageType, error) {
	defer c.rb.release()
	if !c.rd.inMsg {
		if err := c.nextDataFrame(ctx); err != nil {
			return 0, err
		}
	}
	var scratch []byte // for discarding
	for {
		for c.rd.remain > 0 {
			var dst []byte
			if collect {
				need := c.rd.remain
				if c.rd.rsv != 0 {
					need += decodeRoom // permessage-deflate appends its stripped tail in place
				}
				c.rd.msg = growFor(c.rd.msg, need, c.rd.fin && len(c.rd.msg) == 0)
				dst = c.rd.msg[len(c.rd.msg):cap(c.rd.msg)]
			} else {
				if scratch == nil {
					scratch = make([]byte, 512)
				}
				dst = scratch
			}
			n, err := c.readPayload(ctx, dst)
			if collect {
				c.rd.msg = c.rd.msg[:len(c.rd.msg)+n]
			}
			if err != nil {
				return 0, err
			}
		}
		if c.rd.fin {
			return c.endMessage()
		}
		if err := c.nextDataFrame(ctx); err != nil {
			return 0, err
		}
	}
}

// decodeRoom is the spare capacity left after an encoded message for its extension.
const decodeRoom = 16

// growStep bounds the room made for a frame ahead of its bytes: a peer that announces a large
// frame and then sends it slowly, or not at all, gets no more than this held for it; past it
// the buffer grows geometrically as the bytes arrive.
const growStep = 256 << 10

// growFor makes room in b for the n more bytes a frame announces, or for growStep of them when
// n is larger: exactly n for a message known to be one frame, else growing geometrically, as
// append does (never past the n announced, once n is past growStep).
func growFor(b []byte, n int64, exact bool) []byte {
	if int64(cap(b)-len(b)) >= min(n, growStep) {
		return b
	}
	if exact && n <= growStep {
		return make([]byte, 0, n)
	}
	size := max(int64(len(b))+min(n, growStep), int64(2*cap(b)))
	if n > growStep {
		size = min(size, int64(len(b))+n)
	}
	nb := make([]byte, len(b), size)
	copy(nb, b)
	return nb
}

// endMessage finishes a message whose last payload byte has been read.
func (c *Conn) endMessage() (MessageType, error) {
	c.rd.inMsg = false
	if c.rd.typ == MessageText && c.rd.rsv == 0 && !c.rd.utf8.done() {
		return 0, c.fail(&ProtocolError{Code: StatusInvalidFramePayload, Reason: "text message ends inside a UTF-8 sequence"})
	}
	return c.rd.typ, nil
}

// readPayload reads some of the current frame's payload into p: what is buffered, or else one
// network read. It unmasks and checks UTF-8 as the bytes arrive, so invalid text fails the
// connection at once, even mid-frame.
func (c *Conn) readPayload(ctx context.Context, p []byte) (int, error) {
	if int64(len(p)) > c.rd.remain {
		p = p[:c.rd.remain]
	}
	n, err := c.rb.readSome(p)
	if n > 0 {
		p = p[:n]
		if c.rd.masked {
			ws.Cipher(p, c.rd.mask, c.rd.maskPos)
			c.rd.maskPos += n
		}
		c.rd.remain -= int64(n)
		if c.rd.remain == 0 {
			c.frameArrived(ctx)
		}
		if c.rd.typ == MessageText && c.rd.rsv == 0 && !c.rd.utf8.write(p) {
			return n, c.fail(&ProtocolError{Code: StatusInvalidFramePayload, Reason: "invalid UTF-8 in a text message"})
		}
	}
	if err != nil {
		return n, c.readFailed(ctx, err)
	}
	return n, nil
}

// nextDataFrame reads frames up to the header of the next data frame, handling control frames
// on the way.
func (c *Conn) nextDataFrame(ctx context.Context) error {
	for {
		h, err := c.readHeader(ctx)
		if err != nil {
			return err
		}
		if perr := c.checkHeader(h); perr != nil {
			return c.fail(perr)
		}
		if h.OpCode.IsControl() {
			if err := c.handleControl(ctx, h); err != nil {
				return err
			}
			if c.yieldIdle() {
				return errYield // idle mode: park rather than wait (idle.go)
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			c.rd.inMsg = true
			c.rd.typ = MessageType(h.OpCode)
			c.rd.total = 0
			c.rd.utf8 = utf8Checker{}
			c.rd.rsv = h.Rsv
		}
		c.rd.total += h.Length
		if limit := c.rawLimit(); c.rd.total > limit {
			reason := fmt.Sprintf("message of at least %d bytes is longer than MaxLength (%d)", c.rd.total, c.opts.MaxLength)
			if c.rd.rsv != 0 {
				reason = fmt.Sprintf("compressed message of at least %d bytes is longer than deflate makes of MaxLength (%d) bytes (%d)",
					c.rd.total, c.opts.MaxLength, limit)
			}
			return c.fail(&ProtocolError{Code: StatusMessageTooBig, Reason: reason})
		}
		c.rd.fin, c.rd.remain = h.Fin, h.Length
		c.rd.masked, c.rd.mask, c.rd.maskPos = h.Masked, h.Mask, 0
		if h.Length == 0 {
			c.frameArrived(ctx)
		}
		return nil
	}
}

// rawLimit bounds a message's payload bytes on the wire: MaxLength, or, for a message an
// extension encoded, encodedLimit(MaxLength). The decoded size is checked against MaxLength
// by the extension, as it decodes.
func (c *Conn) rawLimit() int64 {
	if c.rd.rsv == 0 {
		return c.opts.MaxLength
	}
	return encodedLimit(c.opts.MaxLength)
}

// encodedLimit is the most a deflate encoder that is not built to waste bytes can turn n bytes
// of data into: zlib's deflateBound for its non-default settings (every literal in a fixed
// Huffman code, 9 bits of 8, plus block overhead), as permessage-deflate peers use them
// (a window below 15 bits; Node's ws, faye-websocket and browsers all use zlib). Incompressible
// data grows by much less in practice (Node's ws sends 1,047,552 random bytes as 1,049,725),
// and compressible data, which is what compression is for, never comes near. 64 bytes cover
// the end of the stream and a final empty block.
func encodedLimit(n int64) int64 {
	const maxInt64 = 1<<63 - 1
	grow := n>>3 + n>>8 + n>>9 + 64
	if n > maxInt64-grow {
		return maxInt64
	}
	return n + grow
}

// readHeader reads one frame header.
func (c *Conn) readHeader(ctx context.Context) (ws.Header, error) {
	var h ws.Header
	b, err := c.rb.peek(2)
	if err != nil {
		return h, c.readFailed(ctx, err)
	}
	size := 2
	if b[1]&0x80 != 0 {
		size += 4
	}
	switch b[1] & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if b, err = c.rb.peek(size); err != nil {
		return h, c.readFailed(ctx, err)
	}
	c.rb.discard(size)
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] >> 4) & 0x7
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(b[2])<<8 | int64(b[3])
		i = 4
	case 127:
		if b[2]&0x80 != 0 {
			return h, c.fail(&ProtocolError{Code: StatusProtocolError, Reason: "frame length with the most significant bit set"})
		}
		for _, x := range b[2:10] {
			h.Length = h.Length<<8 | int64(x)
		}
		i = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[i:i+4])
	}
	return h, nil
}

// frameArrived ends the first-frame deadline once the peer's first frame has arrived whole,
// payload included: a header sent at once and a payload dribbled after it must not hold the
// connection open past FirstFrameTimeout. The deadline, set once at upgrade, is only cleared
// here, which costs an idle connection nothing.
func (c *Conn) frameArrived(ctx context.Context) {
	if !c.firstFrame.IsZero() {
		c.firstFrame = time.Time{}
		c.rdeadline.rebase(ctx)
	}
}

// checkHeader applies RFC 6455 §5 to a frame header.
func (c *Conn) checkHeader(h ws.Header) *ProtocolError {
	perr := func(format string, args ...any) *ProtocolError {
		return &ProtocolError{Code: StatusProtocolError, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case h.Rsv&^c.extRSV != 0:
		return perr("reserved bits %03b set without a negotiated extension", h.Rsv)
	case h.Rsv != 0 && (h.OpCode.IsControl() || h.OpCode == ws.OpContinuation):
		return perr("reserved bits %03b set on a control or continuation frame", h.Rsv)
	case h.OpCode.IsReserved():
		return perr("reserved opcode %d", h.OpCode)
	case h.OpCode.IsControl() && !h.Fin:
		return perr("fragmented control frame")
	case h.OpCode.IsControl() && h.Length > 125:
		return perr("control frame payload of %d bytes (at most 125)", h.Length)
	case !c.client && !h.Masked:
		return perr("unmasked frame from the client")
	case c.client && h.Masked:
		return perr("masked frame from the server")
	case h.OpCode == ws.OpContinuation && !c.rd.inMsg:
		return perr("continuation frame with no message to continue")
	case h.OpCode.IsData() && h.OpCode != ws.OpContinuation && c.rd.inMsg:
		return perr("new data frame inside a fragmented message")
	}
	return nil
}

// handleControl reads a control frame's payload and acts on it.
func (c *Conn) handleControl(ctx context.Context, h ws.Header) error {
	if c.rd.ctrl == nil {
		c.rd.ctrl = new([125]byte)
	}
	p := c.rd.ctrl[:h.Length]
	if err := c.rb.read(p); err != nil {
		return c.readFailed(ctx, err)
	}
	c.frameArrived(ctx)
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpPing:
		if err := c.writeControl(ws.OpPong, p, time.Now().Add(c.opts.CloseTimeout)); err != nil {
			if errors.Is(err, ErrCloseSent) {
				return nil // a close frame went out first: pongs are over
			}
			return c.closedErr()
		}
	case ws.OpPong:
		c.settlePong(p)
	case ws.OpClose:
		ce, perr := parseClosePayload(p)
		if perr != nil {
			return c.fail(perr)
		}
		if c.closeSent.CompareAndSwap(false, true) {
			var buf [125]byte
			_ = c.writeControl(ws.OpClose, closePayload(buf[:], ce.Code, ce.Reason), time.Now().Add(c.opts.CloseTimeout))
		}
		c.shut(ce)
		return ce
	}
	return nil
}

// readFailed turns a network error met while reading into what Read reports.
func (c *Conn) readFailed(ctx context.Context, err error) error {
	if c.isClosed() {
		return c.closedErr()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		if !c.firstFrame.IsZero() && !time.Now().Before(c.firstFrame) {
			return c.fail(&ProtocolError{Code: StatusPolicyViolation, Reason: fmt.Sprintf(
				"no whole frame within FirstFrameTimeout (%v)", c.opts.FirstFrameTimeout)})
		}
		return err
	}
	ce := &CloseError{Code: StatusAbnormalClosure, err: err}
	c.shut(ce)
	return ce
}

// Reader returns the next data message as a stream, for messages too large to hold at once.
// The stream must be read to io.EOF before the next call to Read or Reader, which otherwise
// discard what is left of it. ctx bounds every read of the stream. Limits, UTF-8 checks and
// control frames are handled as in Read.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	// No defers here, as in Read.
	if err := c.lock(ctx, &c.readMu); err != nil {
		return 0, nil, err
	}
	c.rdeadline.begin(ctx, c.firstFrame)
	var err error
	if c.late == nil {
		err = c.waitIdle(ctx)
	}
	var typ MessageType
	var r io.Reader
	if err == nil {
		typ, r, err = c.readerLocked(ctx)
	}
	c.rb.release()
	c.rdeadline.end(c.firstFrame)
	c.readMu.unlock()
	return typ, r, err
}

// readerLocked is Reader once the next bytes are there (see waitIdle).
func (c *Conn) readerLocked(ctx context.Context) (MessageType, io.Reader, error) {
	if m, ok := c.popLate(); ok {
		return m.typ, bytes.NewReader(m.data), nil
	}
	if c.rd.inMsg {
		if _, err := c.readMessageLocked(ctx, false); err != nil {
			return 0, nil, err
		}
	}
	c.rd.msg, c.rd.msgStart = nil, 0
	if err := c.nextDataFrame(ctx); err != nil {
		return 0, nil, err
	}
	if c.rd.rsv != 0 {
		// An extension encoded it: it decodes whole, within MaxLength.
		typ, err := c.readMessageLocked(ctx, true)
		if err != nil {
			return 0, nil, err
		}
		msg := c.rd.msg
		c.rd.msg = nil
		if msg, err = c.decode(typ, msg); err != nil {
			return 0, nil, err
		}
		return typ, bytes.NewReader(msg), nil
	}
	return c.rd.typ, &messageReader{c: c, ctx: ctx}, nil
}

type messageReader struct {
	c   *Conn
	ctx context.Context
	eof bool
}

func (r *messageReader) Read(p []byte) (int, error) {
	if r.eof {
		return 0, io.EOF
	}
	c := r.c
	if err := c.lock(r.ctx, &c.readMu); err != nil {
		return 0, err
	}
	defer c.readMu.unlock()
	if !c.rd.inMsg {
		return 0, errors.New("websocket: message reader used after the next Read")
	}
	// A message has begun, but its first frame may still be arriving: the first-frame
	// deadline, if still set, bounds it.
	c.rdeadline.begin(r.ctx, c.firstFrame)
	defer func() { c.rdeadline.end(c.firstFrame) }() // cleared when the frame is whole
	defer c.rb.release()
	for c.rd.remain == 0 {
		if c.rd.fin {
			return 0, r.end()
		}
		if err := c.nextDataFrame(r.ctx); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.readPayload(r.ctx, p)
	if err == nil && c.rd.remain == 0 && c.rd.fin {
		// The message's last bytes: say so now, saving the caller a call that would only
		// return io.EOF.
		err = r.end()
	}
	return n, err
}

// end finishes the message once its last byte has been read: io.EOF, or why the message
// is invalid.
func (r *messageReader) end() error {
	r.eof = true
	if _, err := r.c.endMessage(); err != nil {
		return err
	}
	return io.EOF
}

// ctxErr is ctx.Err(), also when the network deadline taken from ctx fired a moment before
// ctx's own timer.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
