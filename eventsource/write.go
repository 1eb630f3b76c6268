package eventsource

import (
	"fmt"
	"net"
	"slices"
	"time"
)

// The write path. One writer at a time owns a stream's output (es.writing). A writer exists
// only while there is something to write: whoever queues or publishes something for an idle
// stream becomes its writer (notifyLocked, then startWriter). On a connection whose socket can
// be written without waiting, that caller writes what is waiting itself and never waits: what
// the socket does not take is left in es.rest for a writer goroutine, which waits for the
// client within WriteTimeout. Elsewhere the writer is a goroutine from the start.

// maxBatch bounds the events one write takes from a Stream's history.
const maxBatch = 256

// notifyLocked records that something may be waiting and, when no writer runs, makes the
// caller the writer: it then returns true, and the caller must call startWriter once it has
// unlocked es.mu. es.mu is held.
func (es *EventSource) notifyLocked() (start bool) {
	es.pending = true
	if es.writing || es.closed {
		return false
	}
	es.writing = true
	return true
}

// startWriter runs the writer that notifyLocked made of the caller: here, without waiting,
// when the connection allows it, or on a writer goroutine. scratch is a buffer for batches,
// returned (possibly grown) for the next call. es.mu is not held.
func (es *EventSource) startWriter(scratch [][]byte) [][]byte {
	if es.fd >= 0 {
		return es.run(scratch, false)
	}
	es.goWrite()
	return scratch
}

// goWrite runs es's writer on a goroutine that may wait for the client: an idle writer of
// es's Stream, or a new goroutine.
func (es *EventSource) goWrite() {
	es.mu.Lock()
	sub := es.sub
	es.mu.Unlock()
	switch {
	case sub == nil:
		go es.run(nil, true)
	case !sub.stream.writers.handoff(es):
		go sub.stream.writers.work(es)
	}
}

// run writes what is waiting until nothing is, then lets go of the output. With wait false it
// never waits for the client: when the socket takes only part of a batch, the rest goes to a
// writer goroutine (goWrite) and run returns. scratch is a buffer for the batches, returned for
// the next run (possibly grown).
func (es *EventSource) run(scratch [][]byte, wait bool) [][]byte {
	var wrote time.Time
	more := false
	for {
		es.mu.Lock()
		if !wrote.IsZero() {
			es.lastWrite, wrote = wrote, time.Time{}
		}
		if more {
			es.pending = true
		}
		batch := append(scratch[:0], es.rest...)
		es.rest = nil
		if es.closed {
			graceful := es.err == nil
			batch = append(batch, es.queue...)
			es.queue, es.queued = nil, 0
			es.mu.Unlock()
			switch {
			case !graceful || len(batch) == 0:
			case !wait: // what was sent before Close
				if es.handOff(batch) {
					return scratch
				}
			default:
				_, _ = es.write(batch)
			}
			clear(batch)
			es.mu.Lock()
			es.writing = false
			es.mu.Unlock()
			es.finish()
			return batch[:0]
		}
		if !es.pending && len(batch) == 0 {
			if wait && es.conn != nil {
				// Back to writes that never wait, which fail past a deadline: clear it. Under
				// es.mu, so that it cannot undo the deadline of a writer that follows.
				es.setWriteDeadline(time.Time{})
			}
			es.writing = false
			es.mu.Unlock()
			return scratch
		}
		es.pending = false
		batch = append(batch, es.queue...)
		es.queue, es.queued = nil, 0
		sub := es.sub
		es.mu.Unlock()

		more = false
		lost := false
		if sub != nil {
			batch, more, lost = sub.stream.read(sub, batch)
		}
		switch {
		case lost:
			es.closeWith(ErrSlowClient)
		case len(batch) == 0:
		case !wait:
			if es.handOff(batch) {
				if more {
					es.mu.Lock()
					es.pending = true
					es.mu.Unlock()
				}
				return scratch
			}
			wrote = time.Now()
		default:
			var err error
			if wrote, err = es.write(batch); err != nil {
				es.closeWith(fmt.Errorf("eventsource: writing to the client: %w", err))
			}
		}
		clear(batch) // keep no event alive through the buffer
		scratch = batch[:0]
	}
}

// handOff writes batch without waiting. When the socket does not take all of it, it keeps
// the rest for a writer goroutine, starts one and returns true: the caller is no longer the
// writer. A failed write ends the stream (and returns false: the caller goes on, to finish).
func (es *EventSource) handOff(batch [][]byte) bool {
	rest, err := es.tryWrite(batch)
	if err != nil {
		es.closeWith(fmt.Errorf("eventsource: writing to the client: %w", err))
		return false
	}
	if len(rest) == 0 {
		return false
	}
	rest = slices.Clone(rest) // batch is the caller's scratch
	es.mu.Lock()
	es.rest = rest
	es.mu.Unlock()
	clear(batch)
	es.goWrite()
	return true
}

// write sends a batch, waiting for the client within the write timeout.
func (es *EventSource) write(batch [][]byte) (time.Time, error) {
	now := time.Now()
	if es.conn != nil {
		if !es.moveDeadline(now.Add(es.writeTimeout)) {
			return now, ErrClosed
		}
		bufs := net.Buffers(batch)
		_, err := bufs.WriteTo(es.conn)
		return now, err
	}
	// On HTTP/1 a deadline stays set between writes (see below), so it is moved only when
	// less than half the timeout is left: most writes skip the cost of moving it.
	if es.h2 || es.deadline.Sub(now) < es.writeTimeout/2 {
		if !es.moveDeadline(now.Add(es.writeTimeout)) {
			return now, ErrClosed
		}
		es.deadline = now.Add(es.writeTimeout)
	}
	var err error
	for _, b := range batch {
		if _, err = es.w.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = es.rc.Flush()
	}
	if es.h2 {
		// HTTP/2 resets the stream when a deadline passes, even with nothing being written.
		// HTTP/1 only fails writes past it, and every write sets a new one first; finish
		// clears it for what net/http writes after the handler returns.
		_ = es.rc.SetWriteDeadline(time.Time{})
	}
	return now, err
}

// moveDeadline sets the write deadline to t, unless the stream has ended badly: closeWith
// has then set it to cut the write, and must not be undone (both happen under es.mu).
func (es *EventSource) moveDeadline(t time.Time) bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.closed && es.err != nil {
		return false
	}
	es.setWriteDeadline(t)
	return true
}

// setWriteDeadline sets the write deadline of the connection or the ResponseWriter.
func (es *EventSource) setWriteDeadline(t time.Time) {
	if es.conn != nil {
		_ = es.conn.SetWriteDeadline(t)
		return
	}
	_ = es.rc.SetWriteDeadline(t)
}
