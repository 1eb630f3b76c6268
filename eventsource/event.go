package eventsource

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event holds the optional fields of an event besides its data. The zero Event sends data
// alone: the client dispatches it as a "message" event and keeps its last event ID.
type Event struct {
	// Type is the event type (the "event:" field). Browsers dispatch an event of type T to
	// listeners added with addEventListener(T); onmessage sees only events without a type or
	// of type "message". It must not contain CR, LF or NUL. Empty means no "event:" line.
	Type string

	// ID is the event's id (the "id:" field), which the client sends back as Last-Event-ID when
	// it reconnects. It must not contain CR, LF or NUL. Empty means no "id:" line; a Stream
	// assigns one (see Stream.Publish).
	ID string
}

// Errors returned by Send, Publish and the client.
var (
	// ErrClosed is returned by Send and Ping on an EventSource that has ended, and by Publish
	// and Subscribe on a closed Stream.
	ErrClosed = errors.New("eventsource: closed")

	// ErrSlowClient is why an EventSource ends when its client falls too far behind: its
	// queue of unsent bytes would pass Options.QueueLimit, or the events it has yet to receive
	// from a Stream have left the Stream's history. See Err.
	ErrSlowClient = errors.New("eventsource: client too slow: it fell behind by more than the queue limit or the stream's history")

	// ErrNotSupported is returned by New when the ResponseWriter cannot flush.
	ErrNotSupported = errors.New("eventsource: the http.ResponseWriter cannot flush (is it wrapped by a middleware?)")
)

// FieldError reports an event field that cannot be sent: a line break or NUL in it would
// corrupt the stream or be ignored by clients.
type FieldError struct {
	Field string // "id" or "event"
	Value string // the value that was refused
}

// Error names the field and its value.
func (e *FieldError) Error() string {
	return fmt.Sprintf("eventsource: the %s field %q contains CR, LF or NUL", e.Field, e.Value)
}

// checkField returns a *FieldError when v has a character that would end or spoil its line.
func checkField(field, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return &FieldError{Field: field, Value: v}
	}
	return nil
}

// encode returns the wire form of one event: its id and type lines, one "data:" line per line
// of data (split at CRLF, CR or LF, as clients split them), and the blank line that dispatches
// it. It checks the fields first.
func encode(data string, ev Event) ([]byte, error) {
	if err := checkField("id", ev.ID); err != nil {
		return nil, err
	}
	if err := checkField("event", ev.Type); err != nil {
		return nil, err
	}
	n := len(data) + 8
	if ev.ID != "" {
		n += len(ev.ID) + 5
	}
	if ev.Type != "" {
		n += len(ev.Type) + 8
	}
	b := make([]byte, 0, n)
	if ev.ID != "" {
		b = append(b, "id: "...)
		b = append(b, ev.ID...)
		b = append(b, '\n')
	}
	if ev.Type != "" {
		b = append(b, "event: "...)
		b = append(b, ev.Type...)
		b = append(b, '\n')
	}
	for {
		i := strings.IndexAny(data, "\r\n")
		line := data
		if i >= 0 {
			line = data[:i]
		}
		if line == "" {
			b = append(b, "data\n"...) // a field without a colon: the empty string, 2 bytes shorter
		} else {
			b = append(b, "data: "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
		if i < 0 {
			break
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, '\n'), nil
}

// firstWrite appends to b what every stream starts with: the "retry:" field that sets the
// client's reconnection time, followed by the blank line that ends the (data-less, never
// dispatched) event, or nothing when retry is zero. The result is never nil.
func firstWrite(b []byte, retry time.Duration) []byte {
	if retry > 0 {
		b = appendRetry(b, retry)
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

// appendRetry appends to b a "retry:" field of d and the blank line that ends its event.
func appendRetry(b []byte, d time.Duration) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, d.Milliseconds(), 10)
	return append(b, "\n\n"...)
}

// pingComment is the keep-alive: a comment line, which clients ignore.
var pingComment = []byte(": ping\n\n")
