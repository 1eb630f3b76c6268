package deflate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/herald-go/herald/extensions"
)

// direction is one direction's compression state on a connection.
type direction struct {
	takeover bool   // context is kept from message to message
	bits     int    // LZ77 window bits used by the compressing side
	history  []byte // the most recent text, for context takeover; nil until needed
}

// session is one connection's permessage-deflate state. Encode and Decode each run on one
// goroutine at a time (the connection serializes them).
type session struct {
	o    *Options
	send direction
	recv direction
	out  appender
	src  bytes.Reader
	// sharedKey is SharedKey's answer, fixed once negotiation settles send ("" with context
	// takeover).
	sharedKey string
}

// negotiated finishes a session whose parameters are settled.
func (s *session) negotiated() *session {
	if !s.send.takeover {
		s.sharedKey = "permessage-deflate/" + strconv.Itoa(s.o.Level) + "/" + strconv.Itoa(s.send.bits) + "/" + strconv.Itoa(s.o.Threshold)
	}
	return s
}

// deflateTail ends every sync-flushed deflate stream; RFC 7692 §7.2.1 strips it from
// messages and §7.2.2 has the receiver put it back.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// finalBlock is an empty final stored block, appended after the tail so the decompressor
// reports a clean end of message.
var finalBlock = []byte{0x01, 0x00, 0x00, 0xff, 0xff}

func (s *session) Encode(m *extensions.Message) error {
	if m.Raw || len(m.Data) < s.o.Threshold {
		return nil
	}
	w := getWriter(s.o.Level, s.send.bits)
	defer putWriter(w, s.o.Level, s.send.bits)
	s.out.b = m.Scratch[:0]
	if s.send.takeover && len(s.send.history) > 0 {
		w.ResetDict(&s.out, s.send.history)
	} else {
		w.Reset(&s.out)
	}
	if _, err := w.Write(m.Data); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	w.ResetDict(nil, nil) // drop the references to our buffers before the pool keeps w
	out := bytes.TrimSuffix(s.out.b, deflateTail)
	s.out.b = nil
	if len(out) >= len(m.Data) {
		// Incompressible: send it as it is. The peer's context does not see it, nor ours.
		return nil
	}
	if s.send.takeover {
		s.send.history = keepTail(s.send.history, m.Data, min(s.o.ContextSize, 1<<s.send.bits))
	}
	m.Data = out
	m.RSV |= extensions.RSV1
	return nil
}

// SharedKey reports the settings that determine this session's output when it keeps no
// context between messages: then equal keys give equal bytes for a message.
func (s *session) SharedKey() (string, bool) {
	return s.sharedKey, s.sharedKey != ""
}

func (s *session) Decode(m *extensions.Message) error {
	if m.RSV&extensions.RSV1 == 0 {
		return nil
	}
	m.RSV &^= extensions.RSV1
	r := readerPool.Get().(inflater)
	defer readerPool.Put(r)
	// The decompressor has a fast path for *bytes.Reader (and none for other readers), so the
	// payload and the stripped tail go in one slice: appended in place when the payload has
	// room (the websocket package leaves some), copied otherwise.
	payload := len(m.Data)
	in := append(m.Data[:payload:cap(m.Data)], deflateTail...)
	in = append(in, finalBlock...)
	s.src.Reset(in)
	var dict []byte
	if s.recv.takeover {
		dict = s.recv.history
	}
	if err := r.Reset(&s.src, dict); err != nil {
		return err
	}
	out, err := inflate(r, payload, m.Limit)
	_ = r.Reset(&emptyReader, nil) // let the pooled reader forget our data
	payloadLeft := payload - (len(in) - s.src.Len())
	s.src.Reset(nil)
	if err != nil {
		return err
	}
	if payloadLeft > 0 {
		// A final block ended the data early (RFC 7692 §7.2.3.3 allows a final block at the
		// end, not in the middle).
		return errEarlyEnd
	}
	if s.recv.takeover {
		// zlib widens an 8-bit window to 9 bits, so keep at least 512 bytes.
		s.recv.history = keepTail(s.recv.history, out, 1<<max(s.recv.bits, 9))
	}
	m.Data = out
	return nil
}

// inflate reads the whole decompressed message, failing past limit bytes without inflating
// much beyond it.
func inflate(r io.Reader, compressed int, limit int64) ([]byte, error) {
	size := int64(min(max(4*compressed, 512), 1<<20))
	if limit > 0 && size > limit+1 {
		size = limit + 1
	}
	out := make([]byte, 0, size)
	for {
		if len(out) == cap(out) {
			grow := int64(cap(out))
			if limit > 0 && int64(cap(out))+grow > limit+1 {
				grow = limit + 1 - int64(cap(out))
			}
			out = slices.Grow(out, int(grow))
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if limit > 0 && int64(len(out)) > limit {
			return nil, fmt.Errorf("permessage-deflate: message inflates past %d bytes: %w", limit, extensions.ErrTooBig)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("permessage-deflate: invalid compressed data: %w", err)
		}
	}
}

// keepTail returns the last n bytes of history followed by text, reusing history's array.
func keepTail(history, text []byte, n int) []byte {
	if len(text) >= n {
		if cap(history) < n {
			history = make([]byte, n)
		}
		history = history[:n]
		copy(history, text[len(text)-n:])
		return history
	}
	if keep := n - len(text); len(history) > keep {
		copy(history, history[len(history)-keep:])
		history = history[:keep]
	}
	if cap(history) < len(history)+len(text) {
		nh := make([]byte, len(history), min(n, max(2*cap(history), len(history)+len(text))))
		copy(nh, history)
		history = nh
	}
	return append(history, text...)
}

// appender is an io.Writer that appends to b.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

var errEarlyEnd = errors.New("permessage-deflate: compressed data has trailing bytes after its final block")

var emptyReader = bytes.Reader{}

// inflater is what flate.NewReader returns, as Decode uses it.
type inflater interface {
	io.Reader
	flate.Resetter
}

var readerPool = sync.Pool{New: func() any { return flate.NewReader(&emptyReader).(inflater) }}

// Writer pools: one per level for the full window, one per smaller window.
var (
	levelPools  [10]sync.Pool
	windowPools [maxWindowBits]sync.Pool
)

func getWriter(level, bits int) *flate.Writer {
	pool := &levelPools[level]
	if bits < maxWindowBits {
		pool = &windowPools[bits]
	}
	if w, ok := pool.Get().(*flate.Writer); ok {
		return w
	}
	var w *flate.Writer
	var err error
	if bits < maxWindowBits {
		w, err = flate.NewWriterWindow(nil, 1<<bits)
	} else {
		w, err = flate.NewWriter(nil, level)
	}
	if err != nil {
		panic(err) // level and bits were checked by New and the negotiation
	}
	return w
}

func putWriter(w *flate.Writer, level, bits int) {
	if bits < maxWindowBits {
		windowPools[bits].Put(w)
		return
	}
	levelPools[level].Put(w)
}
