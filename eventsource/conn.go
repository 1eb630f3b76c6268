package eventsource

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// This file is the stream on a connection taken over from net/http (HTTP/1.x): the response
// head written by hand, writes that never wait, and the goroutine that notices the client
// leaving.

// takeOver starts the stream on conn, which New has hijacked from net/http for r; h holds the
// headers set on the ResponseWriter.
func (es *EventSource) takeOver(conn net.Conn, h http.Header, r *http.Request, o Options) {
	_ = conn.SetDeadline(time.Time{}) // net/http may have left its own
	es.conn = conn
	es.fd = socketFD(conn)
	idle := o.IdleMode && es.takeOverIdle() // moves es.conn and es.fd to the poller (idle_linux.go)
	// The request without its context, which net/http cancels when the handler returns and
	// which would keep net/http's state for the connection alive; and without its body, which
	// reads from net/http's buffer.
	es.req = r.WithContext(context.Background())
	es.req.Body = http.NoBody
	es.req.GetBody = nil

	head := responseHead(r, h, o)
	es.mu.Lock()
	es.rest = [][]byte{head}
	es.watching = true
	es.startPingLocked()
	start := es.notifyLocked()
	es.mu.Unlock()
	if idle {
		es.watchIdle()
	} else {
		go es.watch()
	}
	if start {
		es.startWriter(nil)
	}
}

// responseHead returns the status line and headers of the response, and the retry field.
// The response has no length and no chunked coding: it ends when the connection closes,
// which HTTP/1.0 and HTTP/1.1 clients and proxies all read the same way.
func responseHead(r *http.Request, h http.Header, o Options) []byte {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	streamHeader(h, o.Header)
	for _, k := range []string{"Transfer-Encoding", "Trailer", "Keep-Alive", "Upgrade"} {
		h.Del(k)
	}
	h.Set("Connection", "close")
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	if r.ProtoMinor == 0 {
		b.WriteString("HTTP/1.0 200 OK\r\n")
	} else {
		b.WriteString("HTTP/1.1 200 OK\r\n")
	}
	_ = h.Write(&b) // drops invalid names, and turns line breaks in values into spaces
	b.WriteString("\r\n")
	return firstWrite(b.Bytes(), o.Retry)
}

// watch waits for the client to close the connection and then ends the stream with
// ErrClientGone. An EventSource client sends nothing after its request; anything it does
// send (a pipelined request, which will never be answered) is read and ignored. When the
// stream has finished, watch closes the connection as it ends: when the client has closed its
// side after a graceful end, or that end has lingered long enough (see closeConn).
func (es *EventSource) watch() {
	var b [64]byte
	for {
		if _, err := es.conn.Read(b[:]); err != nil {
			break
		}
	}
	es.watchEnded()
}

// watchEnded is what watching the client ends with, whether watch or the idle poller did it:
// the stream ends with ErrClientGone, and the connection is closed if the stream had finished.
func (es *EventSource) watchEnded() {
	es.closeWith(ErrClientGone)
	es.mu.Lock()
	es.watching = false
	finished := es.finished
	es.mu.Unlock()
	if finished {
		_ = es.conn.Close()
	}
}

// lingerTimeout is how long a connection whose stream ended well stays open for reading
// after the end of the response was sent: see closeConn.
const lingerTimeout = time.Second

// closeConn ends the response on a connection New took over, once nothing will be written to
// it any more: only then may it be closed, since tryWrite writes to its descriptor directly.
// After a graceful end it only sends the end of the response (FIN, or TLS's close_notify) and
// leaves the connection to watch, which closes it once the client has (clients close when
// they see the end, and reconnect), or after lingerTimeout: closing at once with bytes from
// the client unread would reset the connection, and the client could lose the end of the
// stream. After a failure, or when watch has already ended, it closes at once.
func (es *EventSource) closeConn(failed bool) {
	es.mu.Lock()
	es.finished = true
	watching := es.watching
	es.mu.Unlock()
	c := es.conn
	if tc, ok := c.(*tls.Conn); ok && failed {
		c = tc.NetConn() // no close_notify: it could wait 5 seconds on a client that does not read
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok && watching && !failed {
		if cw.CloseWrite() == nil && c.SetReadDeadline(time.Now().Add(lingerTimeout)) == nil {
			return
		}
	}
	_ = c.Close() // which also ends watch
}

// joinSize is the size of the buffers tryWrite joins small events in, so that one system call
// writes many.
const joinSize = 16 << 10

var joinBufs = sync.Pool{New: func() any { b := make([]byte, 0, joinSize); return &b }}

// tryWrite writes what the socket takes of batch at once, without waiting, and returns the
// rest: nil when it took everything. es.fd is a socket.
//
// It writes to the descriptor directly rather than through the runtime's poller (which would
// cost a lock and a look at the descriptor's poll state per write, for a write that never
// waits anyway). That is safe because the descriptor cannot be closed, and its number reused,
// meanwhile: only closeConn and watch close the connection, and only once finish has run,
// which happens when no writer runs and none can start again.
func (es *EventSource) tryWrite(batch [][]byte) ([][]byte, error) {
	var join *[]byte
	defer func() {
		if join != nil {
			joinBufs.Put(join)
		}
	}()
	for len(batch) > 0 {
		// Join the next events when there are several and they fit; write a large one as it is.
		p, k := batch[0], 1
		if len(batch) > 1 && len(p) < joinSize {
			if join == nil {
				join = joinBufs.Get().(*[]byte)
			}
			j := (*join)[:0]
			for k = 0; k < len(batch) && len(j)+len(batch[k]) <= joinSize; k++ {
				j = append(j, batch[k]...)
			}
			p = j
		}
		batch = batch[k:]
		if len(p) == 0 {
			continue
		}
		n, err := writeNow(es.fd, p)
		if err != nil {
			return nil, err
		}
		if n < len(p) {
			return append([][]byte{bytes.Clone(p[n:])}, batch...), nil
		}
	}
	return nil, nil
}
