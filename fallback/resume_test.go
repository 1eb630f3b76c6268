package fallback_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// TestCutResumes cuts the client's TCP connections several times while the server sends a
// numbered sequence and the client sends one up: the Go client resumes each time, and both
// sides get every message once, in order.
func TestCutResumes(t *testing.T) {
	t.Parallel()
	const n = 2000
	for _, proto := range protos {
		for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
			t.Run(proto+"/"+transport, func(t *testing.T) {
				t.Parallel()
				up := make(chan string, n)
				h := newHarness(t, proto, &fallback.Options{BufferMessages: 2 * n, Grace: 5 * time.Second}, collect(up))
				var cuts cutter
				hc := cuts.httpClient(h.tlsConfig())
				defer hc.CloseIdleConnections()
				c := h.dial(transport == fallback.TransportPoll, &fallback.DialOptions{HTTPClient: hc})
				defer c.Close()
				s := h.session()

				ctx := context.Background()
				sent := make(chan error, 1)
				go func() { // the server's numbered sequence, down
					for i := 1; i <= n; i++ {
						if err := s.Send(ctx, []byte(strconv.Itoa(i))); err != nil {
							sent <- err
							return
						}
						if i%4 == 0 { // about 0.6 s in all, for the cuts to fall mid-flow
							time.Sleep(time.Millisecond)
						}
					}
					sent <- nil
				}()
				wrote := make(chan error, 1)
				go func() { // the client's, up
					for i := 1; i <= n; i++ {
						if err := c.Write(ctx, []byte("up "+strconv.Itoa(i))); err != nil {
							wrote <- err
							return
						}
						if i%4 == 0 { // about 0.6 s in all, for the cuts to fall mid-flow
							time.Sleep(time.Millisecond)
						}
					}
					wrote <- nil
				}()
				rctx, cancel := context.WithTimeout(ctx, testTimeout)
				defer cancel()
				cut := 0
				for i := 1; i <= n; i++ {
					m, err := c.Read(rctx)
					require.NoError(t, err, "reading message %d", i)
					require.Equal(t, strconv.Itoa(i), string(m))
					// Mid-flow, both ways; a poll's answer may bring many messages while no
					// connection is open: cut at the first message after the mark that can.
					if cut < i/(n/10) && i < n-n/20 && cuts.cut() > 0 {
						cut++
					}
				}
				require.GreaterOrEqual(t, cut, 4, "too few cuts mid-flow")
				t.Logf("%d cuts", cut)
				if transport == fallback.TransportSSE {
					require.GreaterOrEqual(t, h.streamCount(), 1+cut, "the stream was not resumed after each cut")
				}
				require.NoError(t, <-sent)
				require.NoError(t, <-wrote)
				for i := 1; i <= n; i++ {
					select {
					case m := <-up:
						require.Equal(t, "up "+strconv.Itoa(i), m)
					case <-rctx.Done():
						t.Fatalf("message %d up never arrived", i)
					}
				}
				// Nothing more down: none was doubled.
				require.NoError(t, s.Send(ctx, []byte("end")))
				m, err := c.Read(rctx)
				require.NoError(t, err)
				require.Equal(t, "end", string(m))
				select {
				case m := <-up:
					t.Fatalf("an extra message up: %q", m)
				default:
				}
			})
		}
	}
}

// TestResumeBacklog keeps the Go client away while 3.5 MiB of messages wait for it, then
// lets it come back: the resumed stream brings them all, in order (over HTTP/2 the stream's
// queue limit may end the first streams, and the client resumes again).
func TestResumeBacklog(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, proto, &fallback.Options{Grace: time.Minute}, idle)
			var g gate
			tr := &http.Transport{DialContext: g.dial, ForceAttemptHTTP2: true}
			if tc := h.tlsConfig(); tc != nil {
				tr.TLSClientConfig = tc.Clone()
			}
			defer tr.CloseIdleConnections()
			c := h.dial(false, &fallback.DialOptions{HTTPClient: &http.Client{Transport: tr}})
			defer c.Close()
			s := h.session()
			g.hold()
			g.cut()
			require.Eventually(t, s.Detached, testTimeout, time.Millisecond)
			big := strings.Repeat("x", 100<<10)
			for i := range 35 {
				require.NoError(t, s.Send(context.Background(), []byte(strconv.Itoa(i)+big)))
			}
			g.release()
			for i, m := range readN(t, c, 35) {
				require.Equal(t, strconv.Itoa(i)+big, m)
			}
		})
	}
}
