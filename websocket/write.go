package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-go/herald/extensions"
)

// Write sends one data message. Any number of goroutines may write at once: messages go out
// whole, one after another. A write waits for its turn, bounded by ctx; when more than
// Options.WriteQueueLimit bytes are already waiting, it fails at once with ErrWriteQueueFull.
//
// Text messages must be valid UTF-8 (the peer closes the connection otherwise); Write does not
// check. Cancelling ctx before any byte of the message went out leaves the connection usable,
// unless the message was compressed with context takeover (the next message would refer to
// it): then, as when ctx is cancelled halfway through, the connection is closed.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	return c.writeMessage(ctx, typ, p, false)
}

// writeMessage writes one data message, through the extensions (raw asks them to leave it
// as it is).
func (c *Conn) writeMessage(ctx context.Context, typ MessageType, p []byte, raw bool) (err error) {
	if c.metrics != nil {
		defer c.meterOut(len(p), &err)
	}
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("websocket: cannot write a message of type %v", typ)
	}
	if c.ext == nil {
		if err := c.enqueue(len(p)); err != nil {
			return err
		}
		defer c.queued.Add(-int64(len(p)))
		return c.writeWhole(ctx, ws.OpCode(typ), p)
	}
	return c.withTurn(ctx, len(p), func() error {
		if c.closeSent.Load() {
			return ErrCloseSent // a close frame is on its way: no need to encode what will not go
		}
		// Extensions encode in the order messages go out: context takeover depends on it.
		bp := writeBufPool.Get().(*[]byte)
		defer writeBufPool.Put(bp)
		m := extensions.Message{Text: typ == MessageText, Data: p, Scratch: (*bp)[:0], Raw: raw}
		if err := c.ext.Encode(&m); err != nil {
			return fmt.Errorf("websocket: extension: %w", err)
		}
		c.meterDeflate(len(p), len(m.Data), m.RSV != 0)
		err := c.writeFrame(ctx, true, ws.OpCode(typ), byte(m.RSV), m.Data)
		if err != nil && m.RSV != 0 && !c.isClosed() && !errors.Is(err, ErrCloseSent) {
			c.encodedNotSent(err)
		}
		return err
	})
}

// encodedNotSent closes the connection after a message that the extensions encoded was not
// sent (its context ended first), when they keep state from message to message: the next
// message would be compressed against a context the peer never saw, and inflate to garbage.
func (c *Conn) encodedNotSent(err error) {
	if _, stateless := c.ext.SharedKey(); stateless {
		return
	}
	c.shut(&CloseError{Code: StatusAbnormalClosure, err: fmt.Errorf(
		"websocket: a compressed message was not sent (%w), and the compression context it entered cannot be taken back", err)})
}

// writeWhole writes a message of one frame that no extension encodes. It needs only the
// frame's turn, unless a Writer is between two frames of its message: then it waits for the
// turn of whole messages, until that message has ended.
func (c *Conn) writeWhole(ctx context.Context, op ws.OpCode, p []byte) error {
	if err := c.lock(ctx, &c.frameMu); err != nil {
		return err
	}
	if !c.fragmenting {
		err := c.writeFrameTurn(ctx, true, op, 0, p)
		c.frameMu.unlock()
		return err
	}
	c.frameMu.unlock()
	return c.inMessageTurn(ctx, func() error { return c.writeFrame(ctx, true, op, 0, p) })
}

// writeEncoded writes a message already encoded by the extensions, with its reserved bits.
func (c *Conn) writeEncoded(ctx context.Context, typ MessageType, rsv byte, p []byte) error {
	return c.withTurn(ctx, len(p), func() error {
		return c.writeFrame(ctx, true, ws.OpCode(typ), rsv, p)
	})
}

// withTurn runs write with n bytes counted in the write queue and the connection's data
// messages to itself, waiting for its turn within ctx.
func (c *Conn) withTurn(ctx context.Context, n int, write func() error) error {
	if err := c.enqueue(n); err != nil {
		return err
	}
	defer c.queued.Add(-int64(n))
	return c.inMessageTurn(ctx, write)
}

// inMessageTurn runs write with the connection's data messages to itself, waiting for its
// turn within ctx.
func (c *Conn) inMessageTurn(ctx context.Context, write func() error) error {
	if err := c.lock(ctx, &c.msgMu); err != nil {
		return err
	}
	defer c.msgMu.unlock()
	return write()
}

// enqueue counts n bytes into the write queue, refusing them when the queue is full.
func (c *Conn) enqueue(n int) error {
	q := c.queued.Add(int64(n))
	if q > c.opts.WriteQueueLimit && q != int64(n) {
		c.queued.Add(-int64(n))
		return ErrWriteQueueFull
	}
	c.meterQueue(q, n)
	return nil
}

// Writer returns a writer for one data message sent in fragments: each Write sends one frame
// (wrap it in a bufio.Writer to send fewer, larger frames), Close sends the final frame. No other
// data message goes out until Close; control frames still may. ctx bounds the whole message.
// Messages written this way are not compressed: extensions transform whole messages.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("websocket: cannot write a message of type %v", typ)
	}
	if err := c.lock(ctx, &c.msgMu); err != nil {
		return nil, err
	}
	return &messageWriter{c: c, ctx: ctx, op: ws.OpCode(typ)}, nil
}

type messageWriter struct {
	c      *Conn
	ctx    context.Context
	op     ws.OpCode
	closed bool
}

func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("websocket: write to a closed message writer")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.c.enqueue(len(p)); err != nil {
		return 0, err
	}
	defer w.c.queued.Add(-int64(len(p)))
	if err := w.c.writeFrame(w.ctx, false, w.op, 0, p); err != nil {
		return 0, err
	}
	w.op = ws.OpContinuation
	return len(p), nil
}

func (w *messageWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	defer w.c.msgMu.unlock()
	return w.c.writeFrame(w.ctx, true, w.op, 0, nil)
}

// writeFrame writes one data frame.
func (c *Conn) writeFrame(ctx context.Context, fin bool, op ws.OpCode, rsv byte, p []byte) error {
	if err := c.lock(ctx, &c.frameMu); err != nil {
		return err
	}
	defer c.frameMu.unlock()
	return c.writeFrameTurn(ctx, fin, op, rsv, p)
}

// writeFrameTurn is writeFrame once the frame's turn is taken.
func (c *Conn) writeFrameTurn(ctx context.Context, fin bool, op ws.OpCode, rsv byte, p []byte) error {
	if c.isClosed() {
		return c.closedErr()
	}
	if c.closeSent.Load() {
		return ErrCloseSent
	}
	c.wdeadline.begin(ctx, time.Time{})
	n, err := c.writeFrameLocked(fin, op, rsv, p)
	c.wdeadline.end(time.Time{})
	return c.wrote(ctx, fin, n, err)
}

// writeFramed writes a whole frame built beforehand (a prepared message's), n bytes of
// payload: one write(2) of bytes that many connections share.
func (c *Conn) writeFramed(ctx context.Context, n int, frame []byte) error {
	if err := c.enqueue(n); err != nil {
		return err
	}
	defer c.queued.Add(-int64(n))
	if err := c.lock(ctx, &c.frameMu); err != nil {
		return err
	}
	if !c.fragmenting {
		err := c.writeFramedTurn(ctx, frame)
		c.frameMu.unlock()
		return err
	}
	c.frameMu.unlock()
	return c.inMessageTurn(ctx, func() error { return c.writeFramedFrame(ctx, frame) })
}

// writeFramedFrame is writeFrame for a whole frame built beforehand: it takes the frame's
// turn and writes it.
func (c *Conn) writeFramedFrame(ctx context.Context, frame []byte) error {
	if err := c.lock(ctx, &c.frameMu); err != nil {
		return err
	}
	defer c.frameMu.unlock()
	return c.writeFramedTurn(ctx, frame)
}

// writeFramedTurn writes a whole frame built beforehand, once the frame's turn is taken.
func (c *Conn) writeFramedTurn(ctx context.Context, frame []byte) error {
	if c.isClosed() {
		return c.closedErr()
	}
	if c.closeSent.Load() {
		return ErrCloseSent
	}
	c.wdeadline.begin(ctx, time.Time{})
	n, err := c.conn.Write(frame)
	c.wdeadline.end(time.Time{})
	return c.wrote(ctx, true, n, err)
}

// wrote ends a frame's write that sent n bytes: on an error the connection closes, unless ctx
// ended the write before any byte went out.
func (c *Conn) wrote(ctx context.Context, fin bool, n int, err error) error {
	if err == nil {
		c.fragmenting = !fin
		return nil
	}
	if cerr := ctxErr(ctx); cerr != nil {
		err = cerr
		if n == 0 && c.rb.raw != nil {
			return err // nothing went out: the stream is intact
		}
	}
	c.shut(&CloseError{Code: StatusAbnormalClosure, err: err})
	return err
}

// writeControl writes one control frame whole, by deadline. Once a close frame has been
// written nothing more is.
//
// When a data frame's write holds the connection past the deadline (a peer that stopped
// reading), the control frame cannot go out: the connection is closed instead, which also
// ends the stuck write.
func (c *Conn) writeControl(op ws.OpCode, p []byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	err := c.lock(ctx, &c.frameMu)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			c.shut(&CloseError{Code: StatusAbnormalClosure, err: errors.New("websocket: a write blocked the connection past the control frame's deadline")})
			return c.closedErr()
		}
		return err
	}
	defer c.frameMu.unlock()
	if c.isClosed() {
		return c.closedErr()
	}
	if c.closeWritten {
		return ErrCloseSent
	}
	c.wdeadline.begin(context.Background(), deadline)
	_, err = c.writeFrameLocked(true, op, 0, p)
	c.wdeadline.end(time.Time{})
	if err != nil {
		c.shut(&CloseError{Code: StatusAbnormalClosure, err: err})
		return err
	}
	if op == ws.OpClose {
		c.closeWritten = true
	}
	return nil
}

// smallFrame is the payload size up to which a server frame is copied behind its header and
// written with one write(2); larger payloads go straight from the caller's slice with
// writev(2), saving the copy.
const smallFrame = 1024

// writeCopyBufSize is the size of the pooled buffers frames are copied into when they cannot
// be written straight from the caller's slice: masked client frames, and connections (such as
// TLS) that gain nothing from vectored writes.
const writeCopyBufSize = 32 << 10

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, writeCopyBufSize); return &b }}

// vectorWrite is the scratch for writing a header and a payload with one writev(2): pooled,
// so that a connection does not carry it between writes.
type vectorWrite struct {
	hdr  [maxHeaderSize]byte
	vec  [2][]byte
	bufs net.Buffers
}

var vectorWritePool = sync.Pool{New: func() any { return new(vectorWrite) }}

// writeFrameLocked writes a frame header and payload, returning how many bytes went out.
func (c *Conn) writeFrameLocked(fin bool, op ws.OpCode, rsv byte, p []byte) (int, error) {
	var mask [4]byte
	if c.client {
		mask = newMask()
	}
	if !c.client && c.rb.raw != nil && len(p) > smallFrame {
		v := vectorWritePool.Get().(*vectorWrite)
		v.vec = [2][]byte{appendHeader(v.hdr[:0], fin, op, rsv, len(p), false, mask), p}
		v.bufs = v.vec[:]
		n, err := v.bufs.WriteTo(c.conn)
		v.vec = [2][]byte{}
		v.bufs = nil
		vectorWritePool.Put(v)
		return int(n), err
	}
	bp := writeBufPool.Get().(*[]byte)
	defer writeBufPool.Put(bp)
	buf := appendHeader((*bp)[:0], fin, op, rsv, len(p), c.client, mask)
	written, pos := 0, 0
	for {
		chunk := min(len(p)-pos, cap(buf)-len(buf))
		start := len(buf)
		buf = append(buf, p[pos:pos+chunk]...)
		if c.client {
			ws.Cipher(buf[start:], mask, pos)
		}
		pos += chunk
		n, err := c.conn.Write(buf)
		written += n
		if err != nil {
			return written, err
		}
		if pos == len(p) {
			return written, nil
		}
		buf = buf[:0]
	}
}

// appendHeader appends a frame header (RFC 6455 §5.2) to b.
func appendHeader(b []byte, fin bool, op ws.OpCode, rsv byte, length int, masked bool, mask [4]byte) []byte {
	b0 := byte(op) | rsv<<4
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case length < 126:
		b = append(b, b0, m|byte(length))
	case length <= 0xffff:
		b = append(b, b0, m|126, byte(length>>8), byte(length))
	default:
		l := uint64(length)
		b = append(b, b0, m|127, byte(l>>56), byte(l>>48), byte(l>>40), byte(l>>32), byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	if masked {
		b = append(b, mask[:]...)
	}
	return b
}

// newMask returns a masking key from the runtime's ChaCha8 generator, which a peer cannot
// predict (RFC 6455 §10.3).
func newMask() (m [4]byte) {
	v := rand.Uint32()
	m[0], m[1], m[2], m[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return m
}
