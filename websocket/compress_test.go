package websocket_test

import (
	"bytes"
	stdflate "compress/flate"
	"context"
	"io"
	"testing"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// compressed returns p as a permessage-deflate payload (RFC 7692 §7.2.1).
func compressed(p []byte) []byte {
	var b bytes.Buffer
	w, _ := stdflate.NewWriter(&b, stdflate.BestSpeed)
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// rsvFrame builds a masked client frame with reserved bits.
func rsvFrame(fin bool, op ws.OpCode, rsv byte, payload []byte) []byte {
	f := ws.MaskFrame(ws.NewFrame(op, fin, bytes.Clone(payload)))
	f.Header.Rsv = rsv
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, f)
	return b.Bytes()
}

// closeCodeAfter dials a deflate echo server offering permessage-deflate, sends raw, and
// returns the close code the server answers with.
func closeCodeAfter(t *testing.T, raw []byte) ws.StatusCode {
	t.Helper()
	url := serve(t, &websocket.Options{MaxLength: 1 << 20, Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, echo)
	d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", nil)}}
	conn, br, _, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = conn.Write(raw)
	require.NoError(t, err)
	rd := clientReader(conn, br)
	for {
		h, err := ws.ReadHeader(rd)
		require.NoError(t, err)
		p := make([]byte, h.Length)
		_, err = io.ReadFull(rd, p)
		require.NoError(t, err)
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(p)
			return code
		}
	}
}

func TestCompressedLimitsAndRules(t *testing.T) {
	t.Parallel()
	bomb := compressed(make([]byte, 16<<20)) // 16 MiB of zeros in a few KiB
	cases := []struct {
		name string
		raw  []byte
		want ws.StatusCode
	}{
		{"inflates past MaxLength", rsvFrame(true, ws.OpBinary, 4, bomb), ws.StatusMessageTooBig},
		{"RSV1 on a continuation", append(rsvFrame(false, ws.OpText, 4, compressed([]byte("ab"))), rsvFrame(true, ws.OpContinuation, 4, nil)...), ws.StatusProtocolError},
		{"RSV1 on a ping", rsvFrame(true, ws.OpPing, 4, nil), ws.StatusProtocolError},
		{"RSV2, not negotiated", rsvFrame(true, ws.OpText, 2, []byte("x")), ws.StatusProtocolError},
		{"invalid compressed data", rsvFrame(true, ws.OpBinary, 4, []byte{0xff, 0xfe, 0xfd}), ws.StatusInvalidFramePayloadData},
		{"invalid UTF-8 once inflated", rsvFrame(true, ws.OpText, 4, compressed([]byte{'a', 0xff})), ws.StatusInvalidFramePayloadData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, closeCodeAfter(t, tc.raw))
		})
	}
}

func TestServerCompressesAndDecompresses(t *testing.T) {
	t.Parallel()
	url := serve(t, &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, echo)
	d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", map[string]string{
		"server_no_context_takeover": "", "client_no_context_takeover": ""})}}
	conn, br, hs, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close()
	_ = hs
	msg := bytes.Repeat([]byte(`{"status":"complete"}`), 500)
	_, err = conn.Write(rsvFrame(true, ws.OpText, 4, compressed(msg)))
	require.NoError(t, err)
	rd := clientReader(conn, br)
	h, err := ws.ReadHeader(rd)
	require.NoError(t, err)
	assert.Equal(t, byte(4), h.Rsv, "the echo should come back compressed")
	p := make([]byte, h.Length)
	_, err = wsutil.NewCipherReader(rd, h.Mask).Read(p)
	require.NoError(t, err)
	assert.Less(t, len(p), len(msg)/4)
	got, err := readAllInflate(p)
	require.NoError(t, err)
	assert.Equal(t, msg, got)
}

func readAllInflate(p []byte) ([]byte, error) {
	r := stdflate.NewReader(bytes.NewReader(append(bytes.Clone(p), 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)))
	var out bytes.Buffer
	_, err := out.ReadFrom(r)
	return out.Bytes(), err
}

// TestReadAppendDecompresses checks that a compressed message is appended, decoded, after
// what the buffer held.
func TestReadAppendDecompresses(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	url := serve(t, &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, func(c *websocket.Conn) {
		_, out, err := c.ReadAppend(context.Background(), []byte("prefix:"))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(out)
	})
	d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", nil)}}
	conn, _, _, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close()
	msg := bytes.Repeat([]byte("compressed "), 100)
	_, err = conn.Write(rsvFrame(true, ws.OpText, 4, compressed(msg)))
	require.NoError(t, err)
	assert.Equal(t, "prefix:"+string(msg), <-got)
}
