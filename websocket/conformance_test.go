package websocket_test

// The conformance suite: Autobahn-kind cases (sections 1-7 and 9 of the Autobahn testsuite,
// plus masking and the opening handshake), each sent byte for byte by the raw client in rawclient_test.go to two echo
// servers: herald (in process) and Node's ws (internal/testpeers/ws-echo-server.js, the
// version pinned there). For every case:
//
//   - herald must meet the RFC 6455 expectation the case states;
//   - ws must meet it too, unless the case says how ws falls short (wsViolates), so that the
//     list of ws's deviations stays true;
//   - herald must behave as ws does (the same messages, pongs, close code, TCP closed),
//     except in the cases marked wsViolates or wsDiffers (where the RFC leaves a choice).
//
// Close reasons are never compared: the RFC leaves them free. Timing is never asserted,
// except that a server that must close does so within the session timeout.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// confLimit is the MaxLength of herald and the maxPayload of ws in every session: above the
// largest framing case (65536) so that section 9's cases can cross it.
const confLimit = 1 << 17

// sessionTimeout is how long the client waits, after its last write, for the server to close.
const sessionTimeout = 2 * time.Second

// confCase is one conformance case.
type confCase struct {
	name string
	rfc  string  // the RFC 6455 expectation, with its section
	send []piece // the client's writes
	// noClientClose: the client does not start the closing handshake after its writes (it
	// still answers a close from the server).
	noClientClose bool
	want          expectation
	// wsViolates says how ws breaks the expectation in this case; it must (still) do so.
	wsViolates string
	// wsDiffers says why herald and ws may differ here though both meet the expectation.
	wsDiffers string
}

// expectation is what the RFC requires of the server in a case.
type expectation struct {
	events []string // messages echoed and pongs, in order
	close  []int    // the close codes the server may send (1005: an empty close payload)
}

// Frame and expectation builders, to keep the tables readable.

func frame(fin bool, op byte, payload []byte) rawFrame {
	return rawFrame{fin: fin, opcode: op, payload: payload}
}
func text(s string) rawFrame                { return frame(true, opText, []byte(s)) }
func binaryMsg(b []byte) rawFrame           { return frame(true, opBinary, b) }
func ping(s string) rawFrame                { return frame(true, opPing, []byte(s)) }
func pong(s string) rawFrame                { return frame(true, opPong, []byte(s)) }
func closeFrame(p []byte) rawFrame          { return frame(true, opClose, p) }
func textEvent(s string) string             { return describe(opText, []byte(s)) }
func binaryEvent(b []byte) string           { return describe(opBinary, b) }
func pongEvent(s string) string             { return describe(opPong, []byte(s)) }
func withRSV(f rawFrame, rsv byte) rawFrame { f.rsv = rsv; return f }

// interFramePause separates the client's writes, so that each usually reaches the server on
// its own and the client can stop once the server has closed.
const interFramePause = 2 * time.Millisecond

// frames sends each frame in a write of its own.
func frames(fs ...rawFrame) []piece {
	ps := make([]piece, len(fs))
	for i, f := range fs {
		ps[i] = piece{data: f.encode(), pause: interFramePause, close: f.opcode == opClose}
	}
	return ps
}

// oneWrite sends all the frames in a single write.
func oneWrite(fs ...rawFrame) []piece {
	var b []byte
	isClose := false
	for _, f := range fs {
		b = append(b, f.encode()...)
		isClose = isClose || f.opcode == opClose
	}
	return []piece{{data: b, pause: interFramePause, close: isClose}}
}

// chunked sends one frame's bytes in writes of size bytes each, pausing between them.
func chunked(f rawFrame, size int, pause time.Duration) []piece {
	b := f.encode()
	var ps []piece
	for off := 0; off < len(b); off += size {
		ps = append(ps, piece{data: b[off:min(off+size, len(b))], pause: pause})
	}
	ps[len(ps)-1].close = f.opcode == opClose
	return ps
}

func cat(pss ...[]piece) []piece { return slices.Concat(pss...) }

// echoes: the server sends these events, then answers the client's close 1000 with 1000.
func echoes(events ...string) expectation {
	return expectation{events: events, close: []int{1000}}
}

// fails: the server sends these events, then closes with code.
func fails(code int, events ...string) expectation {
	return expectation{events: events, close: []int{code}}
}

// fragments splits a message into frames: the first with op, the rest continuations, the
// last with FIN.
func fragments(op byte, parts ...[]byte) []rawFrame {
	fs := make([]rawFrame, len(parts))
	for i, p := range parts {
		fs[i] = frame(i == len(parts)-1, opCont, p)
	}
	fs[0].opcode = op
	return fs
}

// splitAt cuts b at the given offsets.
func splitAt(b []byte, at ...int) [][]byte {
	var parts [][]byte
	prev := 0
	for _, a := range at {
		parts = append(parts, b[prev:a])
		prev = a
	}
	return append(parts, b[prev:])
}

// bytesEach cuts b into 1-byte parts.
func bytesEach(b []byte) [][]byte {
	parts := make([][]byte, len(b))
	for i := range b {
		parts[i] = b[i : i+1]
	}
	return parts
}

// Section 1: framing.
func framingCases() []confCase {
	var cs []confCase
	for _, n := range []int{0, 125, 126, 127, 65535, 65536} {
		t := strings.Repeat("*", n)
		b := bytes.Repeat([]byte{0xfe}, n)
		cs = append(cs,
			confCase{name: fmt.Sprintf("text_%d", n),
				rfc:  "5.2/5.6: a text message of this length (7-bit, 16-bit or 64-bit length) is echoed",
				send: frames(text(t)), want: echoes(textEvent(t))},
			confCase{name: fmt.Sprintf("binary_%d", n),
				rfc:  "5.2/5.6: a binary message of this length is echoed",
				send: frames(binaryMsg(b)), want: echoes(binaryEvent(b))},
		)
	}
	big := strings.Repeat("*", 65536)
	cs = append(cs,
		confCase{name: "text_65536_in_997_byte_chunks",
			rfc:  "5.2: frames are a byte stream; TCP segmentation does not matter",
			send: chunked(text(big), 997, 0), want: echoes(textEvent(big))},
		confCase{name: "binary_65536_in_997_byte_chunks",
			rfc:  "5.2: frames are a byte stream; TCP segmentation does not matter",
			send: chunked(binaryMsg([]byte(big)), 997, 0), want: echoes(binaryEvent([]byte(big)))},
		confCase{name: "text_header_then_stall",
			rfc: "5.2: a frame whose header arrives before its payload is read to its end",
			send: func() []piece {
				b := text(strings.Repeat("x", 125)).encode()
				return []piece{{data: b[:2], pause: 100 * time.Millisecond}, {data: b[2:6], pause: 50 * time.Millisecond}, {data: b[6:]}}
			}(),
			want: echoes(textEvent(strings.Repeat("x", 125)))},
		confCase{name: "text_byte_by_byte",
			rfc:  "5.2: a frame sent one byte per TCP write is still one frame",
			send: chunked(text("Hello, byte by byte!"), 1, time.Millisecond),
			want: echoes(textEvent("Hello, byte by byte!"))},
		confCase{name: "text_two_messages_one_write",
			rfc:  "5.2: two frames in one TCP segment are two messages",
			send: oneWrite(text("first"), binaryMsg([]byte("second"))),
			want: echoes(textEvent("first"), binaryEvent([]byte("second")))},
	)
	return cs
}

// Section 2: pings and pongs.
func pingCases() []confCase {
	p125 := strings.Repeat("P", 125)
	bin := string([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff})
	var ten []rawFrame
	var tenPongs []string
	for i := range 10 {
		ten = append(ten, ping(fmt.Sprintf("payload-%d", i)))
		tenPongs = append(tenPongs, pongEvent(fmt.Sprintf("payload-%d", i)))
	}
	return []confCase{
		{name: "ping_empty", rfc: "5.5.2/5.5.3: a ping is answered by a pong with the same (empty) payload",
			send: frames(ping("")), want: echoes(pongEvent(""))},
		{name: "ping_text_payload", rfc: "5.5.3: the pong carries the ping's application data",
			send: frames(ping("Hello, world!")), want: echoes(pongEvent("Hello, world!"))},
		{name: "ping_binary_payload", rfc: "5.5.3: the ping's payload is echoed byte for byte, UTF-8 or not",
			send: frames(ping(bin)), want: echoes(pongEvent(bin))},
		{name: "ping_125", rfc: "5.5: a control payload of 125 bytes is allowed and echoed",
			send: frames(ping(p125)), want: echoes(pongEvent(p125))},
		{name: "ping_126", rfc: "5.5: control frames MUST have a payload of 125 bytes or less: 1002",
			send: frames(ping(p125 + "P")), want: fails(1002)},
		{name: "ping_125_byte_by_byte", rfc: "5.5.2: a ping arriving one byte at a time is answered",
			send: chunked(ping(p125), 1, time.Millisecond), want: echoes(pongEvent(p125))},
		{name: "pong_unsolicited", rfc: "5.5.3: an unsolicited pong is allowed and needs no answer",
			send: frames(pong("unsolicited")), want: echoes()},
		{name: "pong_unsolicited_then_ping", rfc: "5.5.3: an unsolicited pong is ignored; a later ping is answered",
			send: frames(pong("unsolicited"), ping("solicited")), want: echoes(pongEvent("solicited"))},
		{name: "ten_pings", rfc: "5.5.2: every ping is answered, in order",
			send: frames(ten...), want: echoes(tenPongs...)},
		{name: "ten_pings_one_write", rfc: "5.5.2: every ping is answered, in order, however they arrive",
			send: oneWrite(ten...), want: echoes(tenPongs...)},
	}
}

// Section 3: reserved bits.
func rsvCases() []confCase {
	var cs []confCase
	kinds := []struct {
		name string
		f    rawFrame
	}{
		{"text", text("Hello, world!")},
		{"binary", binaryMsg([]byte{0xff, 0x00, 0xff})},
		{"ping", ping("Hello, world!")},
		{"close", closeFrame(closePayload(1000, ""))},
	}
	for rsv := byte(1); rsv <= 7; rsv++ {
		for _, k := range kinds {
			cs = append(cs, confCase{name: fmt.Sprintf("%s_rsv_%d", k.name, rsv),
				rfc:  "5.2: RSV bits MUST be 0 unless an extension defines them (none was negotiated): 1002",
				send: frames(withRSV(k.f, rsv)), want: fails(1002)})
		}
	}
	cs = append(cs,
		confCase{name: "text_rsv_2_after_valid_then_ping",
			rfc:  "5.2: the valid message is echoed, the RSV frame fails the connection, the ping after it is not answered",
			send: frames(text("Hello"), withRSV(text("Hello"), 2), ping("Hello")), want: fails(1002, textEvent("Hello"))},
		confCase{name: "text_rsv_3_after_valid_then_ping_one_write",
			rfc:  "5.2: as above, all in one TCP write",
			send: oneWrite(text("Hello"), withRSV(text("Hello"), 3), ping("Hello")), want: fails(1002, textEvent("Hello"))},
	)
	return cs
}

// Section 4: reserved opcodes.
func opcodeCases() []confCase {
	var cs []confCase
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cs = append(cs,
			confCase{name: fmt.Sprintf("opcode_%d", op),
				rfc:  "5.2: a reserved opcode MUST fail the connection: 1002",
				send: frames(frame(true, op, nil)), want: fails(1002)},
			confCase{name: fmt.Sprintf("opcode_%d_after_valid_then_ping", op),
				rfc:  "5.2: the valid message is echoed, the reserved opcode (with a payload) fails the connection, the ping is not answered",
				send: frames(text("Hello"), frame(true, op, []byte("reserved opcode")), ping("Hello")),
				want: fails(1002, textEvent("Hello"))},
		)
	}
	return cs
}

// Section 5: fragmentation.
func fragmentationCases() []confCase {
	f1, f2 := []byte("fragment1"), []byte("fragment2")
	hello := []byte("Hello, fragmented world!")
	var helloEach []rawFrame
	for i, f := range fragments(opText, bytesEach(hello)...) {
		helloEach = append(helloEach, f)
		if i%5 == 0 {
			helloEach = append(helloEach, ping(fmt.Sprintf("between-%d", i)))
		}
	}
	var pongsEach []string
	for i := range hello {
		if i%5 == 0 {
			pongsEach = append(pongsEach, pongEvent(fmt.Sprintf("between-%d", i)))
		}
	}
	return []confCase{
		{name: "ping_fragmented", rfc: "5.5: control frames MUST NOT be fragmented: 1002",
			send: frames(fragments(opPing, f1, f2)...), want: fails(1002)},
		{name: "pong_fragmented", rfc: "5.5: control frames MUST NOT be fragmented: 1002",
			send: frames(fragments(opPong, f1, f2)...), want: fails(1002)},
		{name: "close_fragmented", rfc: "5.5: control frames MUST NOT be fragmented: 1002",
			send: frames(fragments(opClose, closePayload(1000, ""), nil)...), want: fails(1002)},
		{name: "text_two_fragments", rfc: "5.4: a fragmented text message is delivered whole",
			send: frames(fragments(opText, f1, f2)...), want: echoes(textEvent("fragment1fragment2"))},
		{name: "binary_two_fragments", rfc: "5.4: a fragmented binary message is delivered whole",
			send: frames(fragments(opBinary, f1, f2)...), want: echoes(binaryEvent([]byte("fragment1fragment2")))},
		{name: "text_two_fragments_one_write", rfc: "5.4: fragments in one TCP write",
			send: oneWrite(fragments(opText, f1, f2)...), want: echoes(textEvent("fragment1fragment2"))},
		{name: "text_ping_between_fragments", rfc: "5.4: control frames MAY be injected between fragments and are answered at once",
			send: frames(frame(false, opText, f1), ping("pongme!"), frame(true, opCont, f2)),
			want: echoes(pongEvent("pongme!"), textEvent("fragment1fragment2"))},
		{name: "text_ping_between_fragments_one_write", rfc: "5.4: as above, in one TCP write",
			send: oneWrite(frame(false, opText, f1), ping("pongme!"), frame(true, opCont, f2)),
			want: echoes(pongEvent("pongme!"), textEvent("fragment1fragment2"))},
		{name: "text_pong_between_fragments", rfc: "5.4/5.5.3: an unsolicited pong between fragments is ignored",
			send: frames(frame(false, opText, f1), pong("unsolicited"), frame(true, opCont, f2)),
			want: echoes(textEvent("fragment1fragment2"))},
		{name: "text_1_byte_fragments", rfc: "5.4: a message in 1-byte fragments is delivered whole",
			send: frames(fragments(opText, bytesEach(hello)...)...), want: echoes(textEvent(string(hello)))},
		{name: "binary_1_byte_fragments_one_write", rfc: "5.4: as above, binary, in one TCP write",
			send: oneWrite(fragments(opBinary, bytesEach(hello)...)...), want: echoes(binaryEvent(hello))},
		{name: "text_1_byte_fragments_pings_between", rfc: "5.4: pings between 1-byte fragments are answered, in order, before the message",
			send: frames(helloEach...), want: echoes(append(pongsEach, textEvent(string(hello)))...)},
		{name: "text_fragments_stalled", rfc: "5.4: fragments may arrive slowly, headers and payloads split",
			send: cat(chunked(frame(false, opText, f1), 3, 20*time.Millisecond), chunked(frame(true, opCont, f2), 3, 20*time.Millisecond)),
			want: echoes(textEvent("fragment1fragment2"))},
		{name: "continuation_fin_without_start", rfc: "5.4: a continuation frame with no message to continue: 1002",
			send: frames(frame(true, opCont, []byte("non-continuation payload"))), want: fails(1002)},
		{name: "continuation_nofin_without_start", rfc: "5.4: a continuation frame with no message to continue: 1002",
			send: frames(frame(false, opCont, f1), frame(true, opCont, f2)), want: fails(1002)},
		{name: "continuation_after_complete_message", rfc: "5.4: the message is echoed; a continuation after it has nothing to continue: 1002",
			send: frames(text("Hello"), frame(true, opCont, f1)), want: fails(1002, textEvent("Hello"))},
		{name: "text_start_inside_fragmented_text", rfc: "5.4: fragments of one message are not interleaved with another data frame: 1002",
			send: frames(frame(false, opText, f1), frame(true, opText, f2)), want: fails(1002)},
		{name: "binary_start_inside_fragmented_text", rfc: "5.4: a new data frame inside a fragmented message: 1002",
			send: frames(frame(false, opText, f1), frame(true, opBinary, f2)), want: fails(1002)},
		{name: "text_nofin_inside_fragmented_binary", rfc: "5.4: a new data frame inside a fragmented message: 1002",
			send: frames(frame(false, opBinary, f1), frame(false, opText, f2), frame(true, opCont, f2)), want: fails(1002)},
		{name: "empty_fragments", rfc: "5.4: fragments may be empty; the message is empty",
			send: frames(fragments(opText, nil, nil, nil)...), want: echoes(textEvent(""))},
		{name: "empty_first_fragment", rfc: "5.4: an empty first fragment",
			send: frames(fragments(opText, nil, f2)...), want: echoes(textEvent("fragment2"))},
		{name: "empty_last_fragment", rfc: "5.4: an empty final fragment",
			send: frames(fragments(opBinary, f1, nil)...), want: echoes(binaryEvent(f1))},
		{name: "close_between_fragments", rfc: "5.4/5.5.1: a close between fragments is answered; the unfinished message is dropped",
			send: frames(frame(false, opText, f1), closeFrame(closePayload(1000, ""))), want: echoes()},
	}
}

// Section 6: UTF-8.

// validUTF8 are valid strings: ASCII, 2-, 3- and 4-byte sequences and the boundaries around
// the surrogates and the end of Unicode.
var validUTF8 = []struct{ name, s string }{
	{"kosme", "κόσμε"},
	{"mixed", "Hello-µ@ßöäüàá-UTF-8!!"},
	{"nul", "\x00"},
	{"U+007F", "\x7f"},
	{"U+0080", "\xc2\x80"},
	{"U+07FF", "\xdf\xbf"},
	{"U+0800", "\xe0\xa0\x80"},
	{"U+D7FF", "\xed\x9f\xbf"},
	{"U+E000", "\xee\x80\x80"},
	{"U+FFFD", "\xef\xbf\xbd"},
	{"U+FFFF", "\xef\xbf\xbf"},
	{"U+10000", "\xf0\x90\x80\x80"},
	{"U+10FFFF", "\xf4\x8f\xbf\xbf"},
}

// invalidUTF8 are byte sequences that are not UTF-8 (RFC 3629), each placed between valid
// text unless atEnd.
var invalidUTF8 = []struct {
	name  string
	b     string
	atEnd bool
}{
	{"overlong_slash_2_bytes", "\xc0\xaf", false},
	{"overlong_slash_3_bytes", "\xe0\x80\xaf", false},
	{"overlong_slash_4_bytes", "\xf0\x80\x80\xaf", false},
	{"overlong_max_2_bytes", "\xc1\xbf", false},
	{"overlong_nul", "\xc0\x80", false},
	{"surrogate_D800", "\xed\xa0\x80", false},
	{"surrogate_DBFF", "\xed\xaf\xbf", false},
	{"surrogate_DC00", "\xed\xb0\x80", false},
	{"surrogate_DFFF", "\xed\xbf\xbf", false},
	{"surrogate_pair", "\xed\xa0\x80\xed\xb0\x80", false},
	{"above_10FFFF", "\xf4\x90\x80\x80", false},
	{"lead_F5", "\xf5\x80\x80\x80", false},
	{"lead_F7_max", "\xf7\xbf\xbf\xbf", false},
	{"five_bytes", "\xf8\x88\x80\x80\x80", false},
	{"six_bytes", "\xfc\x84\x80\x80\x80\x80", false},
	{"byte_FE", "\xfe", false},
	{"byte_FF", "\xff", false},
	{"truncated_2_in_middle", "\xce", false},
	{"truncated_3_in_middle", "\xe2\x82", false},
	{"truncated_4_in_middle", "\xf0\x9d\x84", false},
	{"truncated_2_at_end", "\xce", true},
	{"truncated_3_at_end", "\xe2\x82", true},
	{"truncated_4_at_end", "\xf0\x9d\x84", true},
	{"lone_continuation_80", "\x80", false},
	{"lone_continuation_BF", "\xbf", false},
	{"continuations_only", "\x80\xbf\x80\xbf", false},
}

const kosme = "κόσμε"

// failFastNote is why ws misses the fail-fast cases.
const failFastNote = "ws validates UTF-8 only when a message is complete (receiver.js dataMessage), so an " +
	"invalid fragment of a message whose final fragment never comes goes unanswered; RFC 6455 8.1 says " +
	"an endpoint that finds the byte stream is not UTF-8 MUST fail the connection (Autobahn 6.x grades " +
	"failing only at the end NON-STRICT)"

func utf8Cases() []confCase {
	var cs []confCase
	for _, v := range validUTF8 {
		cs = append(cs, confCase{name: "valid_" + v.name,
			rfc:  "8.1: valid UTF-8 text is delivered",
			send: frames(text(v.s)), want: echoes(textEvent(v.s))})
	}
	// Valid text split between two fragments at every byte boundary, so that multi-byte
	// sequences are cut everywhere they can be.
	for _, s := range []struct{ name, s string }{
		{"kosme", kosme},
		{"clef", "x\xf0\x9d\x84\x9ey"},
		{"U+10FFFF", "\xf4\x8f\xbf\xbf"},
		{"U+0800", "\xe0\xa0\x80"},
	} {
		for at := 1; at < len(s.s); at++ {
			cs = append(cs, confCase{name: fmt.Sprintf("valid_%s_split_at_%d", s.name, at),
				rfc:  "5.4/8.1: a UTF-8 sequence cut between fragments is valid once the message is whole",
				send: frames(fragments(opText, splitAt([]byte(s.s), at)...)...), want: echoes(textEvent(s.s))})
		}
	}
	mixed := validUTF8[1].s
	cs = append(cs,
		confCase{name: "valid_mixed_1_byte_fragments",
			rfc:  "5.4/8.1: valid UTF-8 in 1-byte fragments is valid once the message is whole",
			send: frames(fragments(opText, bytesEach([]byte(mixed))...)...), want: echoes(textEvent(mixed))},
		confCase{name: "valid_truncated_fragment_stalled",
			rfc: "8.1: a fragment that ends inside a sequence is not (yet) invalid: the server waits for the rest",
			send: cat(frames(frame(false, opText, []byte(kosme+"\xce"))), []piece{{pause: 300 * time.Millisecond}},
				frames(frame(true, opCont, []byte("\xbcedited")))),
			want: echoes(textEvent(kosme + "\xce\xbcedited"))},
	)
	for _, v := range invalidUTF8 {
		msg := kosme + v.b + "edited"
		if v.atEnd {
			msg = kosme + v.b
		}
		cs = append(cs, confCase{name: "invalid_" + v.name,
			rfc:  "8.1: text that is not UTF-8 MUST fail the connection: 1007 (7.4.1)",
			send: frames(text(msg)), want: fails(1007)})
	}
	// Invalid text in fragmented messages, every fragment sent: both the strict and the
	// at-the-end validator fail; with 1007, and nothing is echoed.
	bad := []byte(kosme + "\xed\xa0\x80edited")
	cs = append(cs,
		confCase{name: "invalid_in_first_fragment",
			rfc:  "8.1: invalid UTF-8 in the first fragment: 1007",
			send: frames(fragments(opText, bad, []byte("more"))...), want: fails(1007)},
		confCase{name: "invalid_in_last_fragment",
			rfc:  "8.1: invalid UTF-8 in the last fragment: 1007",
			send: frames(fragments(opText, []byte(kosme), bad)...), want: fails(1007)},
		confCase{name: "invalid_sequence_split_between_fragments",
			rfc:  "8.1: a surrogate cut between fragments is invalid once it is whole: 1007",
			send: frames(fragments(opText, []byte(kosme+"\xed"), []byte("\xa0\x80edited"))...), want: fails(1007)},
		confCase{name: "invalid_1_byte_fragments",
			rfc:  "8.1: invalid UTF-8 in 1-byte fragments: 1007",
			send: frames(fragments(opText, bytesEach(bad)...)...), want: fails(1007)},
		confCase{name: "invalid_single_frame_in_chunks",
			rfc:  "8.1: a frame arriving in TCP chunks, invalid in the second: 1007",
			send: chunked(text(string(bad)+"and more text after the surrogate"), 14, 50*time.Millisecond), want: fails(1007)},
	)
	// Fail fast: the final fragment never comes, so only a server that validates each
	// fragment as it arrives can see that the text is invalid.
	cs = append(cs,
		confCase{name: "failfast_invalid_first_fragment",
			rfc:           "8.1: invalid UTF-8 in the first fragment fails the connection at once, final fragment or not: 1007",
			send:          frames(frame(false, opText, bad)),
			noClientClose: true, want: fails(1007), wsViolates: failFastNote},
		confCase{name: "failfast_invalid_second_fragment",
			rfc:           "8.1: a valid fragment, then one above U+10FFFF, no final fragment: 1007 at once",
			send:          frames(frame(false, opText, []byte(kosme)), frame(false, opCont, []byte("\xf4\x90\x80\x80"))),
			noClientClose: true, want: fails(1007), wsViolates: failFastNote},
		confCase{name: "failfast_surrogate_split_between_fragments",
			rfc:           "8.1: a surrogate cut between two fragments is invalid as soon as its second byte arrives: 1007",
			send:          frames(frame(false, opText, []byte(kosme+"\xed")), frame(false, opCont, []byte("\xa0\x80"))),
			noClientClose: true, want: fails(1007), wsViolates: failFastNote},
		confCase{name: "failfast_lone_continuation_first_fragment",
			rfc:           "8.1: a lone continuation byte in the first fragment: 1007 at once",
			send:          frames(frame(false, opText, []byte("\x80"))),
			noClientClose: true, want: fails(1007), wsViolates: failFastNote},
	)
	return cs
}

// Section 7: closing.
func closeCases() []confCase {
	cs := []confCase{
		{name: "close_empty", rfc: "5.5.1/7.1.5: an empty close is answered with a close (empty, or 1000), then TCP is closed",
			send: frames(closeFrame(nil)), want: expectation{close: []int{1005, 1000}}},
		{name: "close_1000", rfc: "5.5.1: a close is answered with a close echoing the code, then TCP is closed",
			send: frames(closeFrame(closePayload(1000, ""))), want: echoes()},
		{name: "close_1000_reason", rfc: "5.5.1: a close with a reason is answered with the code",
			send: frames(closeFrame(closePayload(1000, "Hello World!"))), want: echoes()},
		{name: "close_reason_123_bytes", rfc: "5.5: a close payload of 125 bytes (code + 123-byte reason) is allowed",
			send: frames(closeFrame(closePayload(1000, strings.Repeat("*", 123)))), want: echoes()},
		{name: "close_reason_124_bytes", rfc: "5.5: a close payload of 126 bytes is over the control limit: 1002",
			send: frames(closeFrame(closePayload(1000, strings.Repeat("*", 124)))), want: fails(1002)},
		{name: "close_payload_1_byte", rfc: "5.5.1: a close body is empty or starts with a 2-byte code: 1002",
			send: frames(closeFrame([]byte{0x03})), want: fails(1002)},
		{name: "close_reason_valid_utf8", rfc: "5.5.1: a UTF-8 reason is accepted",
			send: frames(closeFrame(closePayload(1000, kosme))), want: echoes()},
		{name: "close_reason_invalid_utf8", rfc: "5.5.1/8.1: the reason MUST be UTF-8: 1007",
			send: frames(closeFrame(closePayload(1000, kosme+"\xed\xa0\x80edited"))), want: fails(1007)},
		{name: "text_after_close_ignored", rfc: "5.5.1: after sending a close, the endpoint sends no more data; the server drops it",
			send: oneWrite(closeFrame(closePayload(1000, "")), text("after close")), want: echoes()},
		{name: "ping_after_close_ignored", rfc: "5.5.1: a ping after the close is not answered",
			send: oneWrite(closeFrame(closePayload(1000, "")), ping("after close")), want: echoes()},
		{name: "close_twice", rfc: "5.5.1: a second close is ignored; the server answers once",
			send: oneWrite(closeFrame(closePayload(1000, "")), closeFrame(closePayload(1001, ""))), want: echoes()},
		{name: "text_then_close", rfc: "5.5.1: a message before the close is echoed, then the close is answered",
			send: oneWrite(text("Hello"), closeFrame(closePayload(1000, ""))), want: echoes(textEvent("Hello"))},
		{name: "close_after_fragment_with_ping", rfc: "5.5.1: a close inside a fragmented message is answered; the ping before it was answered",
			send: frames(frame(false, opText, []byte("frag")), ping("p"), closeFrame(closePayload(1000, ""))), want: echoes(pongEvent("p"))},
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, confCase{name: fmt.Sprintf("close_code_%d_invalid", code),
			rfc:  "7.4: this code MUST NOT be sent in a close frame (reserved, unassigned, or out of range): 1002",
			send: frames(closeFrame(closePayload(code, ""))), want: fails(1002)})
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cs = append(cs, confCase{name: fmt.Sprintf("close_code_%d_valid", code),
			rfc:  "5.5.1/7.4: a valid code (7.4.1, IANA-registered, or 3000-4999) is echoed in the close reply",
			send: frames(closeFrame(closePayload(uint16(code), "reason"))), want: fails(code)})
	}
	return cs
}

// Section 9-like: the MaxLength limit (ws's maxPayload), and masking.
func limitCases() []confCase {
	at := bytes.Repeat([]byte{'a'}, confLimit)
	over := bytes.Repeat([]byte{'a'}, confLimit+1)
	half := confLimit / 2
	quarter := confLimit / 4
	return []confCase{
		{name: "text_at_limit", rfc: "10.4: a message of exactly the limit is accepted",
			send: frames(text(string(at))), want: echoes(textEvent(string(at)))},
		{name: "binary_at_limit", rfc: "10.4: a message of exactly the limit is accepted",
			send: frames(binaryMsg(at)), want: echoes(binaryEvent(at))},
		{name: "text_over_limit", rfc: "7.4.1/10.4: a message over the limit: 1009",
			send: frames(text(string(over))), want: fails(1009)},
		{name: "binary_over_limit", rfc: "7.4.1/10.4: a message over the limit: 1009",
			send: frames(binaryMsg(over)), want: fails(1009)},
		{name: "fragmented_at_limit", rfc: "10.4: fragments adding up to exactly the limit are accepted",
			send: frames(fragments(opBinary, at[:half], at[half:])...), want: echoes(binaryEvent(at))},
		{name: "fragmented_over_limit_in_last_fragment", rfc: "7.4.1/10.4: the last fragment takes the message over the limit: 1009",
			send: frames(fragments(opText, over[:half], over[half:])...), want: fails(1009)},
		{name: "fragmented_over_limit_by_1_byte_fragment", rfc: "7.4.1/10.4: four fragments reach the limit, a fifth 1-byte one crosses it: 1009",
			send: frames(fragments(opBinary, at[:quarter], at[quarter:2*quarter], at[2*quarter:3*quarter], at[3*quarter:], []byte{'a'})...),
			want: fails(1009)},
		{name: "over_limit_header_only", rfc: "10.4: a frame header announcing more than the limit can be refused before its payload: 1009",
			send: []piece{{data: frame(true, opBinary, over).encode()[:14]}}, noClientClose: true, want: fails(1009)},
		{name: "length_2_pow_32_header_only", rfc: "10.4: a 4 GiB frame is refused from its header: 1009",
			send:          []piece{{data: []byte{0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}}},
			noClientClose: true, want: fails(1009)},
		{name: "length_msb_set", rfc: "5.2: the most significant bit of a 64-bit length MUST be 0: a framing error, 1002",
			send:          []piece{{data: []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}}},
			noClientClose: true, want: fails(1002),
			wsViolates: "ws closes with 1009 (its check that a length fits in 2^53 - 1), not 1002: " +
				"RFC 6455 5.2 makes a length with the top bit set a protocol error, not a large message"},
	}
}

func maskingCases() []confCase {
	un := func(f rawFrame) rawFrame { f.unmasked = true; return f }
	return []confCase{
		{name: "unmasked_text", rfc: "5.1: a server MUST close on an unmasked client frame: 1002",
			send: frames(un(text("Hello"))), want: fails(1002)},
		{name: "unmasked_binary", rfc: "5.1: a server MUST close on an unmasked client frame: 1002",
			send: frames(un(binaryMsg([]byte{1, 2, 3}))), want: fails(1002)},
		{name: "unmasked_ping", rfc: "5.1: unmasked control frames too: 1002, no pong",
			send: frames(un(ping("Hello"))), want: fails(1002)},
		{name: "unmasked_close", rfc: "5.1: an unmasked close: 1002",
			send: frames(un(closeFrame(closePayload(1000, "")))), want: fails(1002)},
		{name: "unmasked_continuation", rfc: "5.1: an unmasked continuation of a masked start: 1002",
			send: frames(frame(false, opText, []byte("frag")), un(frame(true, opCont, []byte("ment")))), want: fails(1002)},
		{name: "unmasked_after_valid", rfc: "5.1: the masked message is echoed, the unmasked one fails the connection",
			send: frames(text("Hello"), un(text("Hello"))), want: fails(1002, textEvent("Hello"))},
	}
}

// Section 4 of RFC 6455 (not an Autobahn section): the opening handshake.

// handshakeCase is one opening handshake, written by hand.
type handshakeCase struct {
	name string
	rfc  string
	// req is the request: {host} and {key} are replaced by the server's address and a fresh
	// valid key.
	req     string
	want101 bool
	// wantVersion: a refusal must name the versions the server speaks (section 4.4).
	wantVersion bool
	wsViolates  string
	wsDiffers   string
}

// handshakeObservation is the server's answer to a handshake.
type handshakeObservation struct {
	status              int
	acceptOK            bool   // Sec-WebSocket-Accept matches the key (section 4.2.2)
	version             string // Sec-WebSocket-Version of a refusal
	protocol, extension string // what a 101 selected
}

func (o handshakeObservation) String() string {
	return fmt.Sprintf("status=%d acceptOK=%v version=%q protocol=%q extensions=%q",
		o.status, o.acceptOK, o.version, o.protocol, o.extension)
}

const validHandshake = "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"

// handshakeWith is validHandshake with one header line replaced (old "" adds new).
func handshakeWith(old, new string) string {
	if old == "" {
		return strings.Replace(validHandshake, "\r\n\r\n", "\r\n"+new+"\r\n\r\n", 1)
	}
	if new == "" {
		return strings.Replace(validHandshake, old+"\r\n", "", 1)
	}
	return strings.Replace(validHandshake, old, new, 1)
}

func handshakeCases() []handshakeCase {
	const statusNote = "both refuse; RFC 6455 4.2.1 leaves the error status to the server (\"such as 400 Bad Request\")"
	const version8Note = "ws also speaks version 8 (hybi-08, same framing) and upgrades it; herald speaks only 13 " +
		"and refuses it with 426 and Sec-WebSocket-Version: 13. RFC 6455 4.2.2 allows either"
	return []handshakeCase{
		{name: "valid", rfc: "4.2.2: a valid handshake gets 101 with the right Sec-WebSocket-Accept",
			req: validHandshake, want101: true},
		{name: "connection_token_list", rfc: "4.2.1: Connection must include the token Upgrade, among others",
			req: handshakeWith("Connection: Upgrade", "Connection: keep-alive, Upgrade"), want101: true},
		{name: "header_names_and_values_in_other_case", rfc: "4.2.1: header names and the Upgrade/Connection values are case-insensitive",
			req: "GET /chat HTTP/1.1\r\nhost: {host}\r\nupgrade: WebSocket\r\nconnection: upgrade\r\n" +
				"sec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\r\n", want101: true},
		{name: "protocol_offered_none_spoken", rfc: "4.2.2: a server that speaks none of the offered subprotocols omits Sec-WebSocket-Protocol",
			req: handshakeWith("", "Sec-WebSocket-Protocol: chat, superchat"), want101: true,
			wsViolates: "ws, given no handleProtocols, selects the client's first subprotocol (its documented default), " +
				"so the 101 claims a subprotocol the application never agreed to; 4.2.2 says the server selects one it is willing to use"},
		{name: "extension_offered_none_configured", rfc: "9.1: an extension the server does not use is not accepted",
			req: handshakeWith("", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"), want101: true},
		{name: "missing_key", rfc: "4.2.1: Sec-WebSocket-Key is required: an error status such as 400",
			req: handshakeWith("Sec-WebSocket-Key: {key}", "")},
		{name: "key_not_16_bytes", rfc: "4.2.1: the key decodes to 16 bytes: an error status",
			req: handshakeWith("{key}", "dGVzdA==")},
		{name: "key_not_base64", rfc: "4.2.1: the key is base64: an error status",
			req: handshakeWith("{key}", "not base64 at all!!!!!!")},
		{name: "version_12", rfc: "4.2.2/4.4: an unsupported version is refused, naming the versions spoken (such as 426)",
			req: handshakeWith("Version: 13", "Version: 12"), wantVersion: true,
			wsDiffers: "herald answers 426 Upgrade Required (the RFC's example), ws 400; both name the versions they speak"},
		{name: "version_missing", rfc: "4.2.1: Sec-WebSocket-Version is required: an error status",
			req: handshakeWith("Sec-WebSocket-Version: 13", "")},
		{name: "version_8", rfc: "4.2.2: version 8 is either spoken (101) or refused naming 13 (herald speaks only 13)",
			req: handshakeWith("Version: 13", "Version: 8"), wantVersion: true, wsViolates: version8Note},
		{name: "method_post", rfc: "4.2.1: the handshake is a GET: an error status",
			req: strings.Replace(validHandshake, "GET", "POST", 1), wsDiffers: statusNote + ": herald 400, ws 405"},
		{name: "http_1_0", rfc: "4.2.1: the handshake is HTTP/1.1 or higher: an error status",
			req:        strings.Replace(validHandshake, "HTTP/1.1", "HTTP/1.0", 1),
			wsViolates: "ws upgrades an HTTP/1.0 request (it never looks at the version, and Node's parser raises the upgrade event)"},
		{name: "missing_upgrade", rfc: "4.2.1: Upgrade: websocket is required: an error status",
			req: handshakeWith("Upgrade: websocket", ""), wsDiffers: statusNote + ": herald 400, ws's HTTP server 426"},
		{name: "upgrade_not_websocket", rfc: "4.2.1: Upgrade must name websocket: an error status",
			req: handshakeWith("Upgrade: websocket", "Upgrade: h2c")},
		{name: "connection_without_upgrade", rfc: "4.2.1: Connection must include Upgrade: an error status",
			req: handshakeWith("Connection: Upgrade", "Connection: keep-alive"),
			wsDiffers: statusNote + ": herald's Upgrade answers 400, ws's HTTP server 426 (a request that is no upgrade never reaches ws); " +
				"in herald, what a non-WebSocket request gets is the handler's choice (IsWebSocket)"},
		{name: "missing_host", rfc: "4.2.1: Host is required: an error status",
			req:        handshakeWith("Host: {host}", ""),
			wsViolates: "ws (on Node's HTTP server) upgrades an HTTP/1.1 request without Host; herald's comes from net/http, which answers 400"},
	}
}

// handshakeSession sends one hand-written handshake and reads the answer.
func handshakeSession(addr, reqTmpl string) (handshakeObservation, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return handshakeObservation{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("herald conformes"))
	req := strings.NewReplacer("{host}", addr, "{key}", key).Replace(reqTmpl)
	if _, err := io.WriteString(conn, req); err != nil {
		return handshakeObservation{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return handshakeObservation{}, fmt.Errorf("reading the response: %w", err)
	}
	defer resp.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return handshakeObservation{
		status:    resp.StatusCode,
		acceptOK:  resp.Header.Get("Sec-WebSocket-Accept") == base64.StdEncoding.EncodeToString(sum[:]),
		version:   strings.Join(resp.Header.Values("Sec-WebSocket-Version"), ", "),
		protocol:  resp.Header.Get("Sec-WebSocket-Protocol"),
		extension: resp.Header.Get("Sec-WebSocket-Extensions"),
	}, nil
}

// check returns what is wrong with o under the case's expectation, or "".
func (c handshakeCase) check(o handshakeObservation) string {
	switch {
	case c.want101 && (o.status != http.StatusSwitchingProtocols || !o.acceptOK || o.protocol != "" || o.extension != ""):
		return "want 101 with the right Sec-WebSocket-Accept and no subprotocol or extension"
	case c.want101:
		return ""
	case c.wantVersion && !strings.Contains(o.version, "13"):
		return "want a refusal (4xx) with Sec-WebSocket-Version naming 13"
	case o.status < 400 || o.status > 499:
		return "want a refusal with a 4xx status"
	}
	return ""
}

func TestDifferentialHandshake(t *testing.T) {
	servers := [2]string{startHeraldEcho(t), startWSEcho(t)}
	for _, c := range handshakeCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var obs [2]handshakeObservation
			for i, addr := range servers {
				o, err := handshakeSession(addr, c.req)
				if err != nil {
					t.Fatalf("%s: %v", []string{"herald", "ws"}[i], err)
				}
				obs[i] = o
			}
			herald, ws := obs[0], obs[1]
			t.Logf("RFC 6455 %s", c.rfc)
			t.Logf("herald: %v", herald)
			t.Logf("ws:     %v", ws)
			if p := c.check(herald); p != "" {
				t.Errorf("herald breaks the RFC expectation: %s; got %v", p, herald)
			}
			wsProblem := c.check(ws)
			switch {
			case c.wsViolates == "" && wsProblem != "":
				t.Errorf("ws breaks the RFC expectation and the case does not say so (add wsViolates): %s; ws: %v", wsProblem, ws)
			case c.wsViolates != "" && wsProblem == "":
				t.Errorf("ws now meets the expectation: drop the wsViolates note (%s)", c.wsViolates)
			case c.wsViolates != "":
				t.Logf("ws deviates, as noted: %s (%s)", wsProblem, c.wsViolates)
			}
			if c.wsViolates == "" && c.wsDiffers == "" && herald.status != ws.status {
				t.Errorf("herald answers %d, ws %d", herald.status, ws.status)
			}
		})
	}
}

func TestDifferentialFraming(t *testing.T)       { runDifferential(t, framingCases()) }
func TestDifferentialPings(t *testing.T)         { runDifferential(t, pingCases()) }
func TestDifferentialReservedBits(t *testing.T)  { runDifferential(t, rsvCases()) }
func TestDifferentialOpcodes(t *testing.T)       { runDifferential(t, opcodeCases()) }
func TestDifferentialFragmentation(t *testing.T) { runDifferential(t, fragmentationCases()) }
func TestDifferentialUTF8(t *testing.T)          { runDifferential(t, utf8Cases()) }
func TestDifferentialClose(t *testing.T)         { runDifferential(t, closeCases()) }
func TestDifferentialLimits(t *testing.T)        { runDifferential(t, limitCases()) }
func TestDifferentialMasking(t *testing.T)       { runDifferential(t, maskingCases()) }

// sessionsAtOnce bounds the raw sessions in flight (each case runs one against each server).
const sessionsAtOnce = 8

// runDifferential runs every case against herald and ws, then checks each in a subtest. The
// sessions run on a bounded pool of their own, so that cases waiting out a timeout overlap
// whatever -parallel is.
func runDifferential(t *testing.T, cases []confCase) {
	t.Helper()
	servers := [2]string{startHeraldEcho(t), startWSEcho(t)}

	type result struct {
		obs  [2]observation
		err  [2]error
		done chan struct{}
	}
	results := make([]*result, len(cases))
	sem := make(chan struct{}, sessionsAtOnce/2)
	for i, c := range cases {
		r := &result{done: make(chan struct{})}
		results[i] = r
		go func() {
			defer close(r.done)
			sem <- struct{}{}
			defer func() { <-sem }()
			var wg sync.WaitGroup
			for j, addr := range servers {
				wg.Go(func() {
					tr, err := rawSession(addr, c.send, rawOptions{clientClose: !c.noClientClose, timeout: sessionTimeout})
					r.obs[j], r.err[j] = observe(tr), err
				})
			}
			wg.Wait()
		}()
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := results[i]
			<-r.done
			herald, ws := r.obs[0], r.obs[1]
			if r.err[0] != nil || r.err[1] != nil {
				t.Fatalf("session did not start: herald: %v; ws: %v", r.err[0], r.err[1])
			}
			t.Logf("RFC 6455 %s", c.rfc)
			t.Logf("herald: %v", herald)
			t.Logf("ws:     %v", ws)
			if problem := c.want.check(herald); problem != "" {
				t.Errorf("herald breaks the RFC expectation: %s\n  want: %v\n  got:  %v", problem, c.want, herald)
			}
			wsProblem := c.want.check(ws)
			switch {
			case c.wsViolates == "" && wsProblem != "":
				t.Errorf("ws breaks the RFC expectation and the case does not say so (add wsViolates): %s\n  want: %v\n  ws:   %v",
					wsProblem, c.want, ws)
			case c.wsViolates != "" && wsProblem == "":
				t.Errorf("ws now meets the RFC expectation: drop the wsViolates note (%s)", c.wsViolates)
			case c.wsViolates != "":
				t.Logf("ws deviates, as noted: %s (%s)", wsProblem, c.wsViolates)
			}
			if c.wsViolates == "" && c.wsDiffers == "" {
				if diff := compare(herald, ws); diff != "" {
					t.Errorf("herald differs from ws: %s\n  herald: %v\n  ws:     %v", diff, herald, ws)
				}
			}
		})
	}
}

// check returns what is wrong with o under the expectation, or "".
func (e expectation) check(o observation) string {
	var problems []string
	if len(o.violations) > 0 {
		problems = append(problems, fmt.Sprintf("forbidden framing: %q", o.violations))
	}
	if !slices.Equal(o.events, e.events) && !(len(o.events) == 0 && len(e.events) == 0) {
		problems = append(problems, fmt.Sprintf("events %q, want %q", o.events, e.events))
	}
	if !slices.Contains(e.close, o.close) {
		problems = append(problems, fmt.Sprintf("close %s, want %s", codeString(o.close), codesString(e.close)))
	}
	if !o.tcpClosed {
		problems = append(problems, fmt.Sprintf("TCP still open %v after the client's last write", sessionTimeout))
	}
	return strings.Join(problems, "; ")
}

func (e expectation) String() string {
	return fmt.Sprintf("events=%q close=%s tcpClosed=true", e.events, codesString(e.close))
}

// compare returns how herald's observation differs from ws's, or "".
func compare(herald, ws observation) string {
	var diffs []string
	if !slices.Equal(herald.events, ws.events) && !(len(herald.events) == 0 && len(ws.events) == 0) {
		diffs = append(diffs, "events")
	}
	if herald.close != ws.close {
		diffs = append(diffs, fmt.Sprintf("close %s vs %s", codeString(herald.close), codeString(ws.close)))
	}
	if herald.tcpClosed != ws.tcpClosed {
		diffs = append(diffs, fmt.Sprintf("tcpClosed %v vs %v", herald.tcpClosed, ws.tcpClosed))
	}
	return strings.Join(diffs, "; ")
}

func codeString(c int) string {
	switch c {
	case noClose:
		return "none"
	case 1005:
		return "empty"
	}
	return strconv.Itoa(c)
}

func codesString(cs []int) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = codeString(c)
	}
	return strings.Join(s, "|")
}

// startWSEcho starts ws-echo-server.js with maxPayload confLimit and returns its address.
func startWSEcho(t *testing.T) string {
	t.Helper()
	p := testpeers.Start(t, "ws-echo-server.js", strconv.Itoa(confLimit))
	line := p.Line(t, 20*time.Second)
	port, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		t.Fatalf("ws-echo-server.js printed %q, want `listening PORT`", line)
	}
	return "127.0.0.1:" + port
}

// startHeraldEcho starts herald's echo server, MaxLength confLimit, and returns its address.
func startHeraldEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No automatic pings: ws sends none, and they would show up in the transcripts.
		c, err := websocket.Upgrade(w, r, &websocket.Options{MaxLength: confLimit, PingInterval: -1})
		if err != nil {
			return
		}
		ctx := context.Background()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
