//go:build unix

package soak

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rawConn is a WebSocket client written from the frames up, so that the suite can send what
// no well-behaved client sends and reset the TCP connection under the server.
type rawConn struct {
	start time.Time // when the connection was made
	c     *net.TCPConn
	br    *bufio.Reader
	wmu   sync.Mutex
}

// dialRaw opens a WebSocket to addr (host:port) at path.
func dialRaw(addr, path string) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{start: time.Now(), c: c.(*net.TCPConn), br: bufio.NewReaderSize(c, 4096)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("soak: handshake answered %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	return rc, nil
}

// frame writes one frame, masked as a client's must be unless mask is false.
func (rc *rawConn) frame(op byte, fin, mask bool, payload []byte) error {
	var hdr [14]byte
	hdr[0] = op
	if fin {
		hdr[0] |= 0x80
	}
	n := 2
	switch l := len(payload); {
	case l < 126:
		hdr[1] = byte(l)
	case l <= math.MaxUint16:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(l))
		n = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(l))
		n = 10
	}
	buf := payload
	if mask {
		hdr[1] |= 0x80
		var key [4]byte
		rand.Read(key[:])
		copy(hdr[n:], key[:])
		n += 4
		buf = make([]byte, len(payload))
		for i, b := range payload {
			buf[i] = b ^ key[i&3]
		}
	}
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	rc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := (&net.Buffers{hdr[:n], buf}).WriteTo(rc.c)
	return err
}

func (rc *rawConn) text(msg []byte) error { return rc.frame(0x1, true, true, msg) }

func (rc *rawConn) sendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return rc.text(b)
}

// errClosedByServer is what read returns for a close frame; its code is in closeCode.
type closeFrame struct{ code int }

func (e closeFrame) Error() string { return fmt.Sprintf("soak: server closed with %d", e.code) }

// read returns the next data message, answering pings and reassembling fragments.
func (rc *rawConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(rc.br, h[:]); err != nil {
			return nil, err
		}
		op, fin := h[0]&0x0f, h[0]&0x80 != 0
		l := uint64(h[1] & 0x7f)
		switch l {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(rc.br, b[:]); err != nil {
				return nil, err
			}
			l = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(rc.br, b[:]); err != nil {
				return nil, err
			}
			l = binary.BigEndian.Uint64(b[:])
		}
		if l > 64<<20 {
			return nil, errors.New("soak: frame too large")
		}
		payload := make([]byte, l)
		if _, err := io.ReadFull(rc.br, payload); err != nil {
			return nil, err
		}
		switch op {
		case 0x8:
			code := 1005
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			rc.frame(0x8, true, true, payload[:min(2, len(payload))])
			return nil, closeFrame{code}
		case 0x9:
			rc.frame(0xA, true, true, payload)
			continue
		case 0xA:
			continue
		}
		msg = append(msg, payload...)
		if fin {
			return msg, nil
		}
	}
}

// reset ends the connection with an RST, as a killed process's kernel would.
func (rc *rawConn) reset() {
	rc.c.SetLinger(0)
	rc.c.Close()
}

// nesMsg is what the raw subscriber reads of a server's nes message.
type nesMsg struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id"`
	Path       string          `json:"path"`
	Message    json.RawMessage `json:"message"`
	StatusCode int             `json:"statusCode"`
}

// rawSub is a nes subscriber over rawConn: hello with its subscriptions, pings answered,
// publications counted by its tracker. With reconnect it comes back after a jittered backoff
// whenever the connection ends, until closed.
type rawSub struct {
	addr      string
	subs      []string
	tr        *tracker
	reconnect bool

	stop    chan struct{}
	done    chan struct{}
	ready   chan struct{} // closed at the first hello reply
	readyMu sync.Once
	hellos  atomic.Int64 // hello replies: 1 + reconnections

	mu      sync.Mutex
	conn    *rawConn
	nextID  int
	pending map[string]chan nesMsg
	err     error // why the last connection ended
}

func newRawSub(addr string, subs []string, reconnect bool) *rawSub {
	s := &rawSub{addr: addr, subs: subs, tr: newTracker(), reconnect: reconnect,
		stop: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{}),
		pending: map[string]chan nesMsg{}}
	go s.run()
	return s
}

func (s *rawSub) run() {
	defer close(s.done)
	for attempt := 0; ; attempt++ {
		err := s.session()
		s.mu.Lock()
		s.err = err
		for id, ch := range s.pending {
			close(ch)
			delete(s.pending, id)
		}
		s.mu.Unlock()
		if !s.reconnect {
			return
		}
		if s.hellos.Load() > 0 {
			attempt = min(attempt, 1)
		}
		wait := time.Duration(mrand.Int64N(int64(min(2*time.Second, 100*time.Millisecond<<min(attempt, 5))) + 1))
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
	}
}

func (s *rawSub) session() error {
	select {
	case <-s.stop:
		return errStopped
	default:
	}
	rc, err := dialRaw(s.addr, "/")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.conn = rc
	s.mu.Unlock()
	select {
	case <-s.stop:
		rc.c.Close()
		return errStopped
	default:
	}
	defer rc.c.Close()
	subs := s.subs
	if subs == nil {
		subs = []string{}
	}
	if err := rc.sendJSON(map[string]any{"type": "hello", "id": "h", "version": "2", "subs": subs}); err != nil {
		return err
	}
	for {
		data, err := rc.read()
		if err != nil {
			return err
		}
		var m nesMsg
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("soak: the server sent what is not JSON: %q", data)
		}
		switch m.Type {
		case "ping":
			rc.sendJSON(map[string]any{"type": "ping", "id": json.RawMessage(m.ID)})
		case "pub":
			s.tr.record(m.Path, m.Message)
		case "hello":
			if m.StatusCode >= 400 {
				return fmt.Errorf("soak: hello refused: %s", data)
			}
			s.hellos.Add(1)
			s.readyMu.Do(func() { close(s.ready) })
		default:
			s.mu.Lock()
			ch := s.pending[string(m.ID)]
			delete(s.pending, string(m.ID))
			s.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

// call sends a nes message (its id filled in) and returns the reply's channel, closed without
// a value if the connection ends first.
func (s *rawSub) call(m map[string]any) (<-chan nesMsg, error) {
	s.mu.Lock()
	rc := s.conn
	s.nextID++
	id := s.nextID
	ch := make(chan nesMsg, 1)
	s.pending[fmt.Sprint(id)] = ch
	s.mu.Unlock()
	if rc == nil {
		return nil, errors.New("soak: not connected")
	}
	m["id"] = id
	return ch, rc.sendJSON(m)
}

// resetConn resets the current connection (RST), without stopping the subscriber.
func (s *rawSub) resetConn() {
	s.mu.Lock()
	rc := s.conn
	s.mu.Unlock()
	if rc != nil {
		rc.reset()
	}
}

func (s *rawSub) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Lock()
	rc := s.conn
	s.mu.Unlock()
	if rc != nil {
		// A polite close: the frame, then the socket.
		rc.frame(0x8, true, true, []byte{0x03, 0xe8})
		rc.c.Close()
	}
	<-s.done
}

// tracker counts a subscriber's publications per path: each carries {"seq": n}, published
// 0, 1, 2, ... on each path, so a gap is a loss and a repeat (or a step back) a duplicate.
type tracker struct {
	mu   sync.Mutex
	next map[string]int
	lost int
	dup  int
	got  int
	bad  int // publications that were not ours
}

func newTracker() *tracker { return &tracker{next: map[string]int{}} }

type pubBody struct {
	Seq *int `json:"seq"`
}

func (t *tracker) record(path string, raw json.RawMessage) {
	if strings.HasPrefix(path, "/soak/subchurn/") {
		return // the subscribe storm's paths: nobody counts them
	}
	var b pubBody
	if err := json.Unmarshal(raw, &b); err != nil || b.Seq == nil {
		t.mu.Lock()
		t.bad++
		t.mu.Unlock()
		return
	}
	seq := *b.Seq
	t.mu.Lock()
	defer t.mu.Unlock()
	next := t.next[path]
	switch {
	case seq == next:
		t.got++
		t.next[path] = seq + 1
	case seq < next:
		t.dup++
	default:
		t.lost += seq - next
		t.got++
		t.next[path] = seq + 1
	}
}

// has says whether the publications up to n on path have arrived (or been passed).
func (t *tracker) has(path string, n int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next[path] >= n
}

// tally returns the counts, with what never came of sent (path -> publications) as lost.
func (t *tracker) tally(sent map[string]int) (got, lost, dup int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lost = t.lost
	for path, n := range sent {
		if t.next[path] < n {
			lost += n - t.next[path]
		}
	}
	return t.got, lost, t.dup + t.bad
}

// publication is the body of publication seq: its sequence number and pad bytes of padding.
func publication(seq, pad int) map[string]any {
	return map[string]any{"seq": seq, "pad": strings.Repeat("x", pad)}
}
