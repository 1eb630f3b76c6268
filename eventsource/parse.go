package eventsource

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Message is one event as a client receives it.
type Message struct {
	// Type is the event type: "message" when the event had no "event:" field.
	Type string
	// ID is the stream's last event id after this event (the "id:" of this event or of an
	// earlier one, as browsers' MessageEvent.lastEventId).
	ID string
	// Data is the event's data: its "data:" lines joined with LF.
	Data string
}

// EventTooLargeError is returned when an event (or one line) is larger than the limit the
// Decoder was given.
type EventTooLargeError struct {
	Limit int // the Decoder's limit, in bytes
}

// Error names the limit and the option that sets it.
func (e *EventTooLargeError) Error() string {
	return fmt.Sprintf("eventsource: an event is larger than %d bytes (ClientOptions.MaxEventSize)", e.Limit)
}

// Decoder reads events from an event stream (the body of a text/event-stream response) as the
// WHATWG HTML standard's "interpret an event stream" says: lines end with CRLF, LF or CR; a
// leading byte-order mark is skipped; lines starting with a colon are comments; "data",
// "event", "id" and "retry" fields are used and others ignored; a blank line dispatches the
// event, unless its data is empty. An id containing NUL is ignored; a retry that is not only
// digits is ignored. Bytes that are not UTF-8 are passed through as they are.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	r       *bufio.Reader
	max     int
	started bool // the byte-order mark has been looked for
	skipLF  bool // the last line ended with CR: a following LF belongs to it

	data     []byte
	hasData  bool // a data field was seen (its value may be empty)
	typ      string
	idBuf    string // the last event id buffer: set by "id:" fields
	lastID   string // the last event id string: idBuf as of the last blank line
	retry    time.Duration
	hasRetry bool
	line     []byte
}

// NewDecoder returns a Decoder reading from r. maxEventSize bounds the bytes of one event's
// fields (and of any one line), so that a stream without line breaks cannot take unbounded
// memory; zero or less means 1 MiB. lastEventID starts the last event id buffer (the id a
// reconnecting client resumed from).
func NewDecoder(r io.Reader, maxEventSize int, lastEventID string) *Decoder {
	if maxEventSize <= 0 {
		maxEventSize = defaultMaxEventSize
	}
	return &Decoder{r: bufio.NewReaderSize(r, 4096), max: maxEventSize, idBuf: lastEventID, lastID: lastEventID}
}

const defaultMaxEventSize = 1 << 20

// LastEventID returns the last event id: the value of the last "id:" field as of the last
// blank line (whether or not an event was dispatched there), kept across events. It is what a
// client sends as Last-Event-ID when it reconnects.
func (d *Decoder) LastEventID() string { return d.lastID }

// Retry returns the reconnection time from the last valid "retry:" field; ok is false when
// none was seen.
func (d *Decoder) Retry() (retry time.Duration, ok bool) { return d.retry, d.hasRetry }

// Next returns the next event. It returns io.EOF at the end of the stream (an event that is
// not ended by a blank line is dropped, as the standard says), an *EventTooLargeError when an
// event is larger than the limit, or the reader's error.
func (d *Decoder) Next() (Message, error) {
	for {
		line, err := d.readLine()
		if err != nil {
			return Message{}, err
		}
		if len(line) == 0 {
			if m, ok := d.dispatch(); ok {
				return m, nil
			}
			continue
		}
		if err := d.field(line); err != nil {
			return Message{}, err
		}
	}
}

// readLine returns the next line without its ending. The slice is valid until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	if !d.started {
		d.started = true
		if b, err := d.r.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
			_, _ = d.r.Discard(3)
		}
	}
	if d.skipLF {
		d.skipLF = false
		if b, err := d.r.Peek(1); err == nil && b[0] == '\n' {
			_, _ = d.r.Discard(1)
		}
	}
	d.line = d.line[:0]
	for {
		n := d.r.Buffered()
		if n == 0 {
			if _, err := d.r.Peek(1); err != nil {
				return nil, err // a line without its ending is not a line
			}
			continue
		}
		buf, _ := d.r.Peek(n)
		if i := bytes.IndexAny(buf, "\r\n"); i >= 0 {
			if len(d.line)+i+len(d.data) > d.max {
				return nil, &EventTooLargeError{Limit: d.max}
			}
			d.line = append(d.line, buf[:i]...)
			_, _ = d.r.Discard(i + 1)
			if buf[i] == '\r' {
				d.skipLF = true
				if d.r.Buffered() > 0 {
					d.skipLF = false
					if next, _ := d.r.Peek(1); next[0] == '\n' {
						_, _ = d.r.Discard(1)
					}
				}
			}
			return d.line, nil
		}
		if len(d.line)+len(buf)+len(d.data) > d.max {
			return nil, &EventTooLargeError{Limit: d.max}
		}
		d.line = append(d.line, buf...)
		_, _ = d.r.Discard(len(buf))
	}
}

// field processes one non-blank line.
func (d *Decoder) field(line []byte) error {
	if line[0] == ':' {
		return nil // a comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if len(d.data)+len(value)+1 > d.max {
			return &EventTooLargeError{Limit: d.max}
		}
		if d.hasData {
			d.data = append(d.data, '\n')
		}
		d.data = append(d.data, value...)
		d.hasData = true
	case "event":
		d.typ = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.idBuf = string(value)
		}
	case "retry":
		if len(value) > 0 && strings.Trim(string(value), "0123456789") == "" {
			if ms, err := strconv.ParseInt(string(value), 10, 64); err == nil && ms <= int64(1<<63-1)/int64(time.Millisecond) {
				d.retry, d.hasRetry = time.Duration(ms)*time.Millisecond, true
			}
		}
	}
	return nil
}

// dispatch ends the current event at a blank line.
func (d *Decoder) dispatch() (Message, bool) {
	defer func() {
		d.data, d.hasData, d.typ = d.data[:0], false, ""
		if cap(d.data) > 64<<10 {
			d.data = nil // do not keep a large event's buffer
		}
	}()
	d.lastID = d.idBuf
	if !d.hasData {
		return Message{}, false
	}
	m := Message{Type: d.typ, ID: d.lastID, Data: string(d.data)}
	if m.Type == "" {
		m.Type = "message"
	}
	return m, true
}
