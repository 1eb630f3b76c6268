package websocket_test

// Hostile clients against one server, over real sockets: each gets the close code RFC 6455
// names for what it did, the server's side of its connection ends with the matching error
// (nothing is left reading for it), and a well-behaved client connected to the same server
// the whole time keeps getting its messages.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// hostileLimit is the MaxLength of the hostile-client servers.
const hostileLimit = 1 << 20

// hostileServer is an echo server that reports how each connection ended, from its own side.
type hostileServer struct {
	url   string
	ended chan ending
}

// ending is how the server ended one connection.
type ending struct {
	remote string // the client's address
	err    error  // what Read (or Events.OnClose) ended it with
}

// The read paths of a connection.
const (
	viaRead   = "Read"
	viaReader = "Reader"
	viaIdle   = "Serve in idle mode"
)

// serveHostile starts an echo server with opts, reading with via: Read, Reader (a message
// as a stream) or Serve in idle mode.
func serveHostile(t *testing.T, opts *websocket.Options, via string) *hostileServer {
	t.Helper()
	h := &hostileServer{ended: make(chan ending, 64)}
	h.url = serve(t, opts, func(c *websocket.Conn) {
		ctx := context.Background()
		if via == viaIdle {
			done := make(chan struct{})
			c.Serve(&websocket.Events{
				IdleMode:  true,
				OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) { _ = c.Write(ctx, typ, data) },
				OnClose:   func(c *websocket.Conn, err error) { h.ended <- ending{c.RemoteAddr().String(), err}; close(done) },
			})
			<-done
			return
		}
		for {
			var typ websocket.MessageType
			var data []byte
			var err error
			if via == viaReader {
				var r io.Reader
				if typ, r, err = c.Reader(ctx); err == nil {
					data, err = io.ReadAll(r)
				}
			} else {
				typ, data, err = c.Read(ctx)
			}
			if err == nil {
				err = c.Write(ctx, typ, data)
			}
			if err != nil {
				h.ended <- ending{c.RemoteAddr().String(), err}
				return
			}
		}
	})
	return h
}

// end returns how the server ended the connection of the client at remote, failing after a
// few seconds. The ends of other connections (those of cases that already failed) are passed
// over.
func (h *hostileServer) end(t *testing.T, remote string) error {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-h.ended:
			if e.remote == remote {
				return e.err
			}
		case <-timeout:
			t.Fatal("the server still holds the hostile connection")
			return nil
		}
	}
}

// bystander is a well-behaved client (gobwas/ws's, not ours) that stays connected.
type bystander struct {
	conn net.Conn
	rw   io.ReadWriter
}

func newBystander(t *testing.T, url string) *bystander {
	conn, br := dial(t, url)
	return &bystander{conn: conn, rw: clientReader(conn, br)}
}

// echo sends msg and wants it back.
func (b *bystander) echo(t *testing.T, msg string) {
	t.Helper()
	require.NoError(t, wsutil.WriteClientText(b.conn, []byte(msg)))
	_ = b.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, op, err := wsutil.ReadServerData(b.rw)
	require.NoError(t, err, "the well-behaved client lost its connection")
	assert.Equal(t, ws.OpText, op)
	assert.Equal(t, msg, string(got), "the well-behaved client's echo")
}

// attackClose dials url (offering permessage-deflate when offerDeflate is set), writes raw
// as a client, and returns the code of the close frame the server answers with, or 1006 when
// TCP ends without one, and the client's address. It fails when the server neither closes
// nor answers within 5 s.
func attackClose(t *testing.T, url string, offerDeflate bool, raw []byte) (code ws.StatusCode, local string) {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second}
	if offerDeflate {
		d.Extensions = []httphead.Option{httphead.NewOption("permessage-deflate", nil)}
	}
	conn, br, hs, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	require.Equal(t, offerDeflate, len(hs.Extensions) == 1, "permessage-deflate negotiated")
	local = conn.LocalAddr().String()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close() // before the Wait: it ends a write the server no longer reads
	wg.Go(func() { _, _ = conn.Write(raw) })
	rd := clientReader(conn, br)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		h, err := ws.ReadHeader(rd)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server neither closed nor answered")
		if err != nil {
			return ws.StatusAbnormalClosure, local
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(rd, p); err != nil {
			return ws.StatusAbnormalClosure, local
		}
		if h.OpCode == ws.OpClose {
			code, _ = ws.ParseCloseFrameData(p)
			return code, local
		}
	}
}

// hostileCases are frames no well-behaved client sends, and the close code each must get.
func hostileCases(t *testing.T) []struct {
	name    string
	deflate bool // offer permessage-deflate
	raw     []byte
	want    websocket.StatusCode
} {
	big := bytes.Repeat([]byte("a"), 2*hostileLimit)
	third := bytes.Repeat([]byte("b"), hostileLimit/2)
	bombData := compressed(make([]byte, 8<<20)) // 8 MiB of zeros
	require.Less(t, len(bombData), hostileLimit/4, "the bomb must pass the frame's size check and be cut while it inflates")
	return []struct {
		name    string
		deflate bool
		raw     []byte
		want    websocket.StatusCode
	}{
		{"a 2 MiB message over the 1 MiB limit", false, frame(true, opText, big).encode(), websocket.StatusMessageTooBig},
		{"three fragments adding up past the limit", false,
			bytes.Join([][]byte{frame(false, opBinary, third).encode(), frame(false, opCont, third).encode(), frame(true, opCont, third).encode()}, nil),
			websocket.StatusMessageTooBig},
		{"a header announcing 2^62 bytes", false, []byte{0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, websocket.StatusMessageTooBig},
		{"an 8 MiB decompression bomb (8 times the limit)", true, withRSV(frame(true, opBinary, bombData), 4).encode(), websocket.StatusMessageTooBig},
		{"invalid UTF-8 in a text frame", false, text("valid, then \xff").encode(), websocket.StatusInvalidFramePayload},
		{"a UTF-16 surrogate in a text frame", false, text("\xed\xa0\x80").encode(), websocket.StatusInvalidFramePayload},
		{"a character cut between fragments by other bytes", false,
			append(frame(false, opText, []byte("\xe2\x82")).encode(), frame(true, opCont, []byte("a")).encode()...), websocket.StatusInvalidFramePayload},
		{"compressed invalid UTF-8", true, withRSV(frame(true, opText, compressed([]byte("ok \xc0\xaf"))), 4).encode(), websocket.StatusInvalidFramePayload},
		{"compressed garbage", true, withRSV(frame(true, opBinary, []byte{0xff, 0xff, 0xff, 0xff}), 4).encode(), websocket.StatusInvalidFramePayload},
		{"reserved data opcode 3", false, frame(true, 0x3, []byte("x")).encode(), websocket.StatusProtocolError},
		{"reserved control opcode 0xB", false, frame(true, 0xB, nil).encode(), websocket.StatusProtocolError},
		{"RSV1 without an extension", false, withRSV(text("x"), 4).encode(), websocket.StatusProtocolError},
		{"RSV2 with permessage-deflate", true, withRSV(text("x"), 2).encode(), websocket.StatusProtocolError},
		{"RSV1 on a continuation frame", true,
			append(withRSV(frame(false, opText, compressed([]byte("ab"))), 4).encode(), withRSV(frame(true, opCont, nil), 4).encode()...), websocket.StatusProtocolError},
		{"an unmasked frame", false, rawFrame{fin: true, opcode: opText, payload: []byte("x"), unmasked: true}.encode(), websocket.StatusProtocolError},
		{"a continuation with no message", false, frame(true, opCont, []byte("x")).encode(), websocket.StatusProtocolError},
		{"a new message inside a fragmented one", false,
			append(frame(false, opText, []byte("a")).encode(), text("b").encode()...), websocket.StatusProtocolError},
		{"a ping of 126 bytes", false, frame(true, opPing, make([]byte, 126)).encode(), websocket.StatusProtocolError},
		{"a fragmented ping", false, frame(false, opPing, nil).encode(), websocket.StatusProtocolError},
		{"a 64-bit length with its top bit set", false, []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, websocket.StatusProtocolError},
		{"a close frame of one byte", false, closeFrame([]byte{3}).encode(), websocket.StatusProtocolError},
		{"close code 1005, which is never sent", false, closeFrame([]byte{0x03, 0xed}).encode(), websocket.StatusProtocolError},
		{"close code 999", false, closeFrame([]byte{0x03, 0xe7}).encode(), websocket.StatusProtocolError},
		{"close code 2000", false, closeFrame([]byte{0x07, 0xd0}).encode(), websocket.StatusProtocolError},
		{"a close reason that is not UTF-8", false, closeFrame([]byte{0x03, 0xe8, 0xff}).encode(), websocket.StatusInvalidFramePayload},
	}
}

// TestHostileClientsLeaveOthersServed runs every hostile case against one server, in each
// read path (Read, Reader, Serve in idle mode), with a well-behaved client connected throughout:
// the hostile one gets its close code, the server's side ends with a *ProtocolError carrying
// it, and the well-behaved client's echo still comes back after each.
func TestHostileClientsLeaveOthersServed(t *testing.T) {
	t.Parallel()
	cases := hostileCases(t)
	for _, via := range []string{viaRead, viaReader, viaIdle} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			srv := serveHostile(t, &websocket.Options{MaxLength: hostileLimit, PingInterval: -1,
				Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, via)
			by := newBystander(t, srv.url)
			by.echo(t, "before")
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					got, local := attackClose(t, srv.url, tc.deflate, tc.raw)
					assert.Equal(t, tc.want, websocket.StatusCode(got), "the close code the hostile client got")
					err := srv.end(t, local)
					var pe *websocket.ProtocolError
					if assert.ErrorAs(t, err, &pe, "the server's side ended with %v", err) {
						assert.Equal(t, tc.want, pe.Code, "the server's side: %v", pe)
					}
					by.echo(t, "after "+tc.name)
				})
			}
		})
	}
}

// TestHalfFrameThenSilenceIsFreed: a client that sends part of a frame and then nothing more
// (a client gone without closing TCP) is dropped by the server's deadlines, FirstFrameTimeout
// for a first frame and the automatic ping's PongTimeout after it, and nothing of it is left
// running on the server though its TCP connection is still open. A client that answers pings
// stays connected throughout. Not parallel: it checks that no goroutine is left.
func TestHalfFrameThenSilenceIsFreed(t *testing.T) {
	for _, via := range []string{viaRead, viaReader, viaIdle} {
		for _, first := range []bool{true, false} {
			name := "after a whole first frame, "
			if first {
				name = "the first frame, "
			}
			t.Run(name+via, func(t *testing.T) {
				srv := serveHostile(t, &websocket.Options{PingInterval: 50 * time.Millisecond, PongTimeout: 400 * time.Millisecond,
					FirstFrameTimeout: 150 * time.Millisecond}, via)
				by := newBystander(t, srv.url)
				answered := make(chan string, 16)
				var wg sync.WaitGroup
				defer wg.Wait()
				defer by.conn.Close() // ends the reader below, before the Wait
				wg.Go(func() {
					// Reads the echoes and answers pings, as a client library does.
					for {
						data, op, err := wsutil.ReadServerData(by.rw)
						if err != nil {
							return
						}
						if op == ws.OpText {
							answered <- string(data)
						}
					}
				})
				// The client's frames go out in one Write each: the reader's pongs, written
				// at the same time, could otherwise land between a frame's header and payload.
				say := func(msg string) {
					t.Helper()
					_, err := by.conn.Write(text(msg).encode())
					require.NoError(t, err)
					select {
					case got := <-answered:
						assert.Equal(t, msg, got)
					case <-time.After(5 * time.Second):
						t.Fatalf("the well-behaved client got no echo of %q", msg)
					}
				}
				say("hello")
				baseline := goleak.IgnoreCurrent()
				// The idle loop's workers are the process's, not a connection's: they wait
				// 200 ms for more work, and the well-behaved client's pongs keep them busy.
				workers := goleak.IgnoreAnyFunction("github.com/herald-go/herald/internal/poller.(*loop).worker")

				conn, _ := dial(t, srv.url)
				whole := frame(true, opBinary, []byte(strings.Repeat("x", 100))).encode()
				sent := whole[:len(whole)/2]
				if !first {
					sent = append(text("first").encode(), sent...)
				}
				_, err := conn.Write(sent)
				require.NoError(t, err)
				err = srv.end(t, conn.LocalAddr().String())
				if first {
					var pe *websocket.ProtocolError
					require.ErrorAs(t, err, &pe)
					assert.Equal(t, websocket.StatusPolicyViolation, pe.Code, "%v", pe)
				} else {
					assert.ErrorIs(t, err, websocket.ErrPongTimeout)
				}
				goleak.VerifyNone(t, baseline, workers)

				say("still here")
			})
		}
	}
}
