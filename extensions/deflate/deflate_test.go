package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions"
)

func paramList(s string) []extensions.Param {
	if s == "" {
		return nil
	}
	offers, err := extensions.Parse("permessage-deflate; " + s)
	if err != nil {
		panic(err)
	}
	return offers[0].Params
}

func format(ps []extensions.Param) string {
	s := extensions.Format(extensions.Offer{Name: "x", Params: ps})
	if len(s) > 3 {
		return s[3:]
	}
	return ""
}

func TestAccept(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     Options
		offer    string
		response string
		declined bool
	}{
		{name: "bare offer", offer: "", response: ""},
		{name: "browser", offer: "client_max_window_bits", response: "client_max_window_bits=12"},
		{name: "browser, server keeps 15 bits", opts: Options{ClientMaxWindowBits: 15}, offer: "client_max_window_bits", response: ""},
		{name: "browser, server limits the client", opts: Options{ClientMaxWindowBits: 10}, offer: "client_max_window_bits", response: "client_max_window_bits=10"},
		{name: "client window value kept", offer: "client_max_window_bits=12", response: "client_max_window_bits=12"},
		{name: "client window: smaller of both", opts: Options{ClientMaxWindowBits: 10}, offer: "client_max_window_bits=12", response: "client_max_window_bits=10"},
		{name: "no client window offered: cannot limit it", opts: Options{ClientMaxWindowBits: 10}, offer: "", response: ""},
		{name: "server window asked", offer: "server_max_window_bits=10", response: "server_max_window_bits=10"},
		{name: "server window: smaller of both", opts: Options{ServerMaxWindowBits: 9}, offer: "server_max_window_bits=12", response: "server_max_window_bits=9"},
		{name: "server window announced", opts: Options{ServerMaxWindowBits: 11}, offer: "", response: "server_max_window_bits=11"},
		{name: "server_no_context_takeover", offer: "server_no_context_takeover", response: "server_no_context_takeover"},
		{name: "client_no_context_takeover", offer: "client_no_context_takeover", response: "client_no_context_takeover"},
		{name: "server requires client_no_context_takeover", opts: Options{ClientNoContextTakeover: true}, offer: "", response: "client_no_context_takeover"},
		{name: "server keeps no context", opts: Options{ServerNoContextTakeover: true}, offer: "", response: "server_no_context_takeover"},
		{name: "unknown parameter", offer: "x_foo", declined: true},
		{name: "repeated parameter", offer: "server_no_context_takeover; server_no_context_takeover", declined: true},
		{name: "window too small", offer: "server_max_window_bits=7", declined: true},
		{name: "window too large", offer: "client_max_window_bits=16", declined: true},
		{name: "window leading zero", offer: "server_max_window_bits=010", declined: true},
		{name: "server window without value", offer: "server_max_window_bits", declined: true},
		{name: "value on a flag", offer: "client_no_context_takeover=1", declined: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, s, ok := New(tc.opts).Accept(paramList(tc.offer))
			if tc.declined {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			require.NotNil(t, s)
			assert.Equal(t, tc.response, format(resp))
		})
	}
}

func TestActivate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     Options
		response string
		bad      bool
	}{
		{name: "plain", response: ""},
		{name: "server window", response: "server_max_window_bits=10"},
		{name: "client window", response: "client_max_window_bits=9"},
		{name: "both no context", response: "server_no_context_takeover; client_no_context_takeover"},
		{name: "asked server_no_context_takeover, got it", opts: Options{ServerNoContextTakeover: true}, response: "server_no_context_takeover"},
		{name: "asked server_no_context_takeover, not granted", opts: Options{ServerNoContextTakeover: true}, response: "", bad: true},
		{name: "asked server window 10, got 12", opts: Options{ServerMaxWindowBits: 10}, response: "server_max_window_bits=12", bad: true},
		{name: "asked server window 10, not granted", opts: Options{ServerMaxWindowBits: 10}, response: "", bad: true},
		{name: "offered client window 10, got 12", opts: Options{ClientMaxWindowBits: 10}, response: "client_max_window_bits=12", bad: true},
		{name: "client window without value", response: "client_max_window_bits", bad: true},
		{name: "unknown parameter", response: "x=1", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.opts).Activate(paramList(tc.response))
			if tc.bad {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// pair negotiates a server and a client session as a handshake would.
func pair(t testing.TB, server, client Options) (srv, cli extensions.Session) {
	t.Helper()
	resp, srv, ok := New(server).Accept(New(client).Offer())
	require.True(t, ok)
	cli, err := New(client).Activate(resp)
	require.NoError(t, err)
	return srv, cli
}

// stdStream decodes a compressed direction with the standard library's inflater, as one
// continuous stream, the way a peer that keeps its decompressor per connection does.
type stdStream struct {
	pw *io.PipeWriter
	r  io.ReadCloser
}

func newStdStream() *stdStream {
	pr, pw := io.Pipe()
	return &stdStream{pw: pw, r: stdflate.NewReader(pr)}
}

func (s *stdStream) decode(payload []byte, n int) ([]byte, error) {
	go func() { _, _ = s.pw.Write(append(bytes.Clone(payload), deflateTail...)) }()
	out := make([]byte, n)
	_, err := io.ReadFull(s.r, out)
	return out, err
}

func corpus(r *rand.Rand, i int) []byte {
	switch i % 4 {
	case 0:
		return []byte(fmt.Sprintf(`{"id":%d,"status":"complete","items":[1,2,3]}`, i))
	case 1:
		b := make([]byte, r.IntN(20000))
		for j := range b {
			b[j] = "abcabcabd{}\":,"[r.IntN(14)]
		}
		return b
	case 2:
		b := make([]byte, r.IntN(2000))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	default:
		return bytes.Repeat([]byte("herald "), r.IntN(2000))
	}
}

// TestRoundTrips sends many messages of many sizes each way through every combination of
// parameters (the ground Autobahn's sections 12 and 13 cover), decoding with our sessions and,
// server to client, also with the standard library as an independent decoder.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	var combos []struct{ server, client Options }
	for _, snct := range []bool{false, true} {
		for _, cnct := range []bool{false, true} {
			for _, bits := range []int{9, 12, 15} {
				combos = append(combos, struct{ server, client Options }{
					Options{ServerMaxWindowBits: bits, ClientMaxWindowBits: bits, Threshold: -1},
					Options{ServerNoContextTakeover: snct, ClientNoContextTakeover: cnct, ServerMaxWindowBits: bits, ClientMaxWindowBits: bits, Threshold: -1},
				})
			}
		}
	}
	combos = append(combos, struct{ server, client Options }{Options{Level: 9, ContextSize: 1 << 15}, Options{Level: 5}})
	for ci, c := range combos {
		t.Run(fmt.Sprintf("%d", ci), func(t *testing.T) {
			t.Parallel()
			srv, cli := pair(t, c.server, c.client)
			std := newStdStream()
			r := rand.New(rand.NewPCG(uint64(ci), 1))
			compressed := 0
			for i := range 40 {
				msg := corpus(r, i)
				// server to client
				m := &extensions.Message{Data: bytes.Clone(msg)}
				require.NoError(t, srv.Encode(m))
				if m.RSV&extensions.RSV1 != 0 {
					compressed++
					got, err := std.decode(m.Data, len(msg))
					require.NoError(t, err, "message %d: the standard library cannot decode our stream", i)
					require.Equal(t, msg, got, "message %d (stdlib)", i)
				}
				d := &extensions.Message{RSV: m.RSV, Data: m.Data, Limit: 1 << 20}
				require.NoError(t, cli.Decode(d))
				require.Equal(t, msg, d.Data, "message %d server to client", i)
				// client to server
				m = &extensions.Message{Data: bytes.Clone(msg)}
				require.NoError(t, cli.Encode(m))
				d = &extensions.Message{RSV: m.RSV, Data: m.Data, Limit: 1 << 20}
				require.NoError(t, srv.Decode(d))
				require.Equal(t, msg, d.Data, "message %d client to server", i)
			}
			assert.Greater(t, compressed, 12, "most messages should have gone compressed")
		})
	}
}

func TestIncompressibleGoesRaw(t *testing.T) {
	t.Parallel()
	srv, _ := pair(t, Options{}, Options{})
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	m := &extensions.Message{Data: b}
	require.NoError(t, srv.Encode(m))
	assert.Zero(t, m.RSV, "random bytes should go uncompressed")
	m = &extensions.Message{Data: []byte("tiny")}
	require.NoError(t, srv.Encode(m))
	assert.Zero(t, m.RSV, "below the threshold")
}

// TestDecompressionBombStopsAtLimit is not parallel: it measures the process's allocations.
func TestDecompressionBombStopsAtLimit(t *testing.T) {
	var buf bytes.Buffer
	w, _ := stdflate.NewWriter(&buf, stdflate.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range 64 { // 64 MiB of zeros in a few hundred KiB
		_, _ = w.Write(zeros)
	}
	_ = w.Flush()
	bomb := bytes.TrimSuffix(buf.Bytes(), deflateTail)
	srv, _ := pair(t, Options{}, Options{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := &extensions.Message{RSV: extensions.RSV1, Data: bomb, Limit: 1 << 20}
	err := srv.Decode(m)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, extensions.ErrTooBig)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "inflated far past the limit")
}

func TestDecodeRejectsBadData(t *testing.T) {
	t.Parallel()
	srv, _ := pair(t, Options{}, Options{})
	err := srv.Decode(&extensions.Message{RSV: extensions.RSV1, Data: []byte{0xff, 0xff, 0xff}, Limit: 1 << 20})
	assert.Error(t, err)

	// A final block in the middle of a message, then more data.
	var buf bytes.Buffer
	w, _ := stdflate.NewWriter(&buf, 1)
	_, _ = w.Write([]byte("first"))
	_ = w.Close()
	buf.WriteString("trailing junk")
	err = srv.Decode(&extensions.Message{RSV: extensions.RSV1, Data: buf.Bytes(), Limit: 1 << 20})
	assert.Error(t, err)

	// A final block at the very end is allowed (RFC 7692 §7.2.3.3).
	buf.Reset()
	w, _ = stdflate.NewWriter(&buf, 1)
	_, _ = w.Write([]byte("final"))
	_ = w.Close()
	m := &extensions.Message{RSV: extensions.RSV1, Data: buf.Bytes(), Limit: 1 << 20}
	require.NoError(t, srv.Decode(m))
	assert.Equal(t, "final", string(m.Data))
}

func FuzzDecode(f *testing.F) {
	_, cli := pair(f, Options{}, Options{})
	m := &extensions.Message{Data: bytes.Repeat([]byte("fuzz me "), 100)}
	_ = cli.Encode(m)
	f.Add(m.Data)
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		srv, _ := pair(t, Options{}, Options{})
		orig := bytes.Clone(data)
		m := &extensions.Message{RSV: extensions.RSV1, Data: data, Limit: 4096}
		err := srv.Decode(m)
		if err == nil && len(m.Data) > 4096 {
			t.Fatalf("decoded %d bytes past the limit", len(m.Data))
		}
		if err != nil && !bytes.Equal(m.Data, orig) {
			t.Fatal("a failed Decode changed the message's data")
		}
	})
}
