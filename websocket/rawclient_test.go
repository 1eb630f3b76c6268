package websocket_test

// A raw WebSocket client for the conformance suite: it builds every frame byte by byte (any
// header bit, opcode, length and mask, possibly split across TCP writes with pauses), so it
// can send what no well-behaved client would, and it records everything the server sends back
// without interpreting it beyond the framing. It depends on nothing in package websocket: a
// test client that shared herald's frame code would only confirm herald's own reading of the
// RFC.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// rawFrame is one client frame, every field under the test's control.
type rawFrame struct {
	fin      bool
	rsv      byte // RSV1..RSV3 as the low three bits: RSV1 = 4, RSV2 = 2, RSV3 = 1
	opcode   byte
	payload  []byte
	unmasked bool // send without a mask (a client MUST mask, section 5.1)
}

// testMask is the masking key of every masked frame: fixed, so a failure replays the same
// bytes, and with no zero byte, so an unmasked payload never looks masked.
var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// encode returns the frame's wire bytes: minimal length encoding (section 5.2), payload masked
// with testMask unless unmasked is set.
func (f rawFrame) encode() []byte {
	b := make([]byte, 0, 14+len(f.payload))
	b0 := f.rsv<<4 | f.opcode&0x0f
	if f.fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	var maskBit byte
	if !f.unmasked {
		maskBit = 0x80
	}
	switch n := len(f.payload); {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if f.unmasked {
		return append(b, f.payload...)
	}
	b = append(b, testMask[:]...)
	for i, c := range f.payload {
		b = append(b, c^testMask[i%4])
	}
	return b
}

// piece is one TCP write of the client, followed by a pause.
type piece struct {
	data  []byte
	pause time.Duration
	close bool // the bytes hold a close frame: the client has started (or botched) the closing handshake
}

// serverFrame is one frame as the server sent it.
type serverFrame struct {
	fin     bool
	rsv     byte
	opcode  byte
	masked  bool
	payload []byte
}

// transcript is everything the server did on one connection.
type transcript struct {
	frames    []serverFrame
	tcpClosed bool   // the server closed TCP (EOF, or a reset) before the timeout
	reset     bool   // TCP ended with a reset rather than an orderly shutdown
	junk      string // bytes that are not a frame (a framing error on the server's side)
}

// rawOptions are the knobs of one raw session.
type rawOptions struct {
	// clientClose sends a close frame with 1000 after the pieces, unless the client has
	// already sent a close or the server has already closed.
	clientClose bool
	// timeout bounds the wait for the server to close TCP after the last write.
	timeout time.Duration
}

const chunkSize = 16 << 10 // large pieces go out in chunks, so the client can stop midway

// rawSession connects to addr (host:port), performs the opening handshake by hand, sends the
// pieces and records the server's frames until it closes TCP or opts.timeout passes after
// the last write. Like a well-behaved client (and Autobahn's), it answers the server's close
// frame with a close frame echoing the code, and stops sending its pieces once the server has
// closed. An error means the session could not even start (no connection, no 101).
func rawSession(addr string, pieces []piece, opts rawOptions) (transcript, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return transcript{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br, err := handshake(conn, addr)
	if err != nil {
		return transcript{}, err
	}
	_ = conn.SetWriteDeadline(time.Time{})

	var (
		mu          sync.Mutex // serializes writes, guards the flags below
		clientSent  bool       // the client has sent a close frame
		serverClose bool       // the server has sent a close frame
	)
	write := func(b []byte, isClose bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if serverClose && !isClose {
			return false
		}
		if isClose {
			if clientSent {
				return false
			}
			clientSent = true
		}
		_, err := conn.Write(b)
		return err == nil
	}

	var tr transcript
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := readServerFrame(br)
			if err != nil {
				if errors.Is(err, errBadFrame) {
					tr.junk = err.Error()
				}
				switch {
				case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
					tr.tcpClosed = true
				case errors.Is(err, syscall.ECONNRESET):
					tr.tcpClosed, tr.reset = true, true
				}
				return
			}
			tr.frames = append(tr.frames, f)
			if f.opcode == opClose {
				mu.Lock()
				serverClose = true
				mu.Unlock()
				reply := rawFrame{fin: true, opcode: opClose}
				if len(f.payload) >= 2 {
					reply.payload = f.payload[:2]
				}
				write(reply.encode(), true)
			}
		}
	}()

	for _, p := range pieces {
		for off := 0; off < len(p.data); off += chunkSize {
			if !write(p.data[off:min(off+chunkSize, len(p.data))], p.close) {
				break
			}
		}
		if p.pause > 0 {
			time.Sleep(p.pause)
		}
	}
	if opts.clientClose {
		write(rawFrame{fin: true, opcode: opClose, payload: closePayload(1000, "")}.encode(), true)
	}
	_ = conn.SetReadDeadline(time.Now().Add(opts.timeout))
	<-done
	return tr, nil
}

// handshake sends a hand-written opening handshake and checks the server's 101 (section 4.1),
// returning the reader positioned at the first frame.
func handshake(conn net.Conn, addr string) (*bufio.Reader, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET / HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("handshake: status %s, want 101", resp.Status)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return nil, fmt.Errorf("handshake: Upgrade %q", resp.Header.Get("Upgrade"))
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, fmt.Errorf("handshake: extension %q negotiated though none was offered", ext)
	}
	return br, nil
}

var errBadFrame = errors.New("server sent a malformed frame")

// readServerFrame parses one frame. A clean EOF before the first byte is io.EOF; an EOF
// inside a frame is a truncated frame (errBadFrame).
func readServerFrame(br *bufio.Reader) (serverFrame, error) {
	var f serverFrame
	var h [2]byte
	if _, err := io.ReadFull(br, h[:1]); err != nil {
		return f, err
	}
	if _, err := io.ReadFull(br, h[1:]); err != nil {
		return f, fmt.Errorf("%w: truncated header: %w", errBadFrame, err)
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = h[0] >> 4 & 7
	f.opcode = h[0] & 0x0f
	f.masked = h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, fmt.Errorf("%w: truncated length: %w", errBadFrame, err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, fmt.Errorf("%w: truncated length: %w", errBadFrame, err)
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<28 {
		return f, fmt.Errorf("%w: length %d", errBadFrame, n)
	}
	var mask [4]byte
	if f.masked {
		if _, err := io.ReadFull(br, mask[:]); err != nil {
			return f, fmt.Errorf("%w: truncated mask: %w", errBadFrame, err)
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(br, f.payload); err != nil {
		return f, fmt.Errorf("%w: truncated payload (%d bytes announced): %w", errBadFrame, n, err)
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= mask[i%4]
		}
	}
	return f, nil
}

// closePayload is a close frame body: the code in network order, then the reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// observation is a transcript reduced to what the RFC lets a test compare: messages (frames
// reassembled), pongs and other control frames in order, the close code, and whether TCP was
// closed. Close reasons are kept for the log but never compared: the RFC leaves them free.
type observation struct {
	events      []string // "text …", "binary …", "pong …", "ping …"
	close       int      // the server's close code; 1005 for an empty close payload, -1 for no close frame
	closeReason string
	tcpClosed   bool
	reset       bool     // TCP ended with a reset: the server closed with client data unread (allowed)
	violations  []string // what the server did that RFC 6455 forbids of any server
}

// noClose is observation.close when the server sent no close frame.
const noClose = -1

func observe(tr transcript) observation {
	o := observation{close: noClose, tcpClosed: tr.tcpClosed, reset: tr.reset}
	if tr.junk != "" {
		o.violations = append(o.violations, tr.junk)
	}
	var msg []byte
	var msgOp byte
	inMsg := false
	closed := false
	for _, f := range tr.frames {
		if closed {
			o.violations = append(o.violations, fmt.Sprintf("frame (opcode %d) after the close frame", f.opcode))
			continue
		}
		if f.masked {
			o.violations = append(o.violations, "masked server frame (section 5.1)")
		}
		if f.rsv != 0 {
			o.violations = append(o.violations, fmt.Sprintf("RSV bits %03b without an extension", f.rsv))
		}
		switch f.opcode {
		case opText, opBinary, opCont:
			if (f.opcode == opCont) != inMsg {
				o.violations = append(o.violations, fmt.Sprintf("fragmentation broken at opcode %d", f.opcode))
			}
			if f.opcode != opCont {
				msgOp, msg = f.opcode, nil
			}
			msg = append(msg, f.payload...)
			inMsg = !f.fin
			if f.fin {
				o.events = append(o.events, describe(msgOp, msg))
			}
		case opPing, opPong:
			o.events = append(o.events, describe(f.opcode, f.payload))
		case opClose:
			closed = true
			switch len(f.payload) {
			case 0:
				o.close = 1005
			case 1:
				o.close = 0
				o.violations = append(o.violations, "close payload of 1 byte")
			default:
				o.close = int(binary.BigEndian.Uint16(f.payload))
				o.closeReason = string(f.payload[2:])
			}
		default:
			o.violations = append(o.violations, fmt.Sprintf("reserved opcode %d", f.opcode))
		}
	}
	return o
}

// describe names a message or control frame in a form that is short, exact and readable.
func describe(op byte, p []byte) string {
	kind := map[byte]string{opText: "text", opBinary: "binary", opPing: "ping", opPong: "pong"}[op]
	if len(p) <= 32 {
		if op != opBinary && utf8.Valid(p) && !bytes.ContainsFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) ||
			op == opText && utf8.Valid(p) {
			return kind + " " + strconv.Quote(string(p))
		}
		return fmt.Sprintf("%s %x", kind, p)
	}
	sum := sha256.Sum256(p)
	return fmt.Sprintf("%s len=%d sha256=%x", kind, len(p), sum[:6])
}

func (o observation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "events=%q ", o.events)
	switch o.close {
	case noClose:
		b.WriteString("close=none ")
	case 1005:
		b.WriteString("close=empty ")
	default:
		fmt.Fprintf(&b, "close=%d reason=%q ", o.close, o.closeReason)
	}
	fmt.Fprintf(&b, "tcpClosed=%v", o.tcpClosed)
	if o.reset {
		b.WriteString(" (reset)")
	}
	if len(o.violations) > 0 {
		fmt.Fprintf(&b, " violations=%q", o.violations)
	}
	return b.String()
}
