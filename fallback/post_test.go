package fallback_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// batches returns m batches of one to three messages each, and all their messages in order.
func batches(m int) (msgs [][]string, all []string) {
	msgs = make([][]string, m+1) // by seq, from 1
	for seq := 1; seq <= m; seq++ {
		for j := range 1 + seq%3 {
			msg := fmt.Sprintf("batch %d message %d é", seq, j)
			msgs[seq] = append(msgs[seq], msg)
			all = append(all, msg)
		}
	}
	return msgs, all
}

// received reads n messages from got.
func received(t *testing.T, got <-chan string, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(testTimeout)
	for len(out) < n {
		select {
		case m := <-got:
			out = append(out, m)
		case <-timeout:
			t.Fatalf("received %d messages of %d", len(out), n)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("a message more than sent: %q", m)
	case <-time.After(20 * time.Millisecond):
	}
	return out
}

// TestBatchesSerial posts batches shuffled and duplicated, one at a time: each is answered as
// the session's order says (204 applied or already applied, 409 with the seq expected for a
// gap), and the application receives every message once, in order.
func TestBatchesSerial(t *testing.T) {
	t.Parallel()
	for _, open := range []string{"sse", "poll"} {
		t.Run(open, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1000)
			h := newHarness(t, "HTTP/1.1", nil, collect(got))
			hc := h.client()
			var ticket string
			if open == "sse" {
				st := openStream(t, hc, h.base)
				o := parseOpen(t, st.expect(fallback.EventOpen).Data)
				require.EqualValues(t, 1, o.Seq)
				ticket = o.Ticket
			} else {
				ticket = openPoll(t, hc, h.base).Ticket
			}

			const m = 40
			msgs, all := batches(m)
			rng := rand.New(rand.NewPCG(1, 2))
			next := uint64(1) // the seq the session expects
			codes := map[int]int{}
			for round := 0; next <= m; round++ {
				require.Less(t, round, 100, "the batches were never all applied")
				var order []uint64
				for seq := uint64(1); seq <= m; seq++ {
					for range 1 + rng.IntN(3) {
						order = append(order, seq)
					}
				}
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				for _, seq := range order {
					a := post(t, hc, h.base, fallback.EndpointSend, batchBody(seq, msgs[seq]...), "Herald-Ticket", ticket)
					codes[a.status]++
					switch {
					case seq < next:
						require.Equal(t, http.StatusNoContent, a.status, "a batch already applied, %d: %s", seq, a.body)
					case seq == next:
						require.Equal(t, http.StatusNoContent, a.status, "the next batch, %d: %s", seq, a.body)
						next++
					default:
						require.Equal(t, http.StatusConflict, a.status, "batch %d after a gap: %s", seq, a.body)
						require.Equal(t, strconv.FormatUint(next, 10), a.header.Get("Herald-Expected-Seq"))
						require.Contains(t, string(a.body), `"statusCode":409`)
					}
				}
			}
			require.Positive(t, codes[http.StatusConflict])
			require.Equal(t, all, received(t, got, len(all)))
		})
	}
}

// TestBatchesConcurrent posts every batch twice at once, each POST retried until it is
// answered 204: whatever the order they arrive in, and with POSTs refused with 429 while
// another is in flight, the application receives every message once, in order.
func TestBatchesConcurrent(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1000)
			h := newHarness(t, proto, nil, collect(got))
			hc := h.client()
			ticket := openPoll(t, hc, h.base).Ticket

			const m = 30
			msgs, all := batches(m)
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			errs := make(chan error, 2*m)
			for seq := uint64(1); seq <= m; seq++ {
				for range 2 {
					wg.Go(func() {
						deadline := time.Now().Add(testTimeout)
						for time.Now().Before(deadline) {
							status, expected, err := rawPost(hc, h.base, ticket, batchBody(seq, msgs[seq]...))
							if err != nil {
								errs <- err
								return
							}
							mu.Lock()
							codes[status]++
							mu.Unlock()
							switch status {
							case http.StatusNoContent:
								return
							case http.StatusConflict:
								if e, err := strconv.ParseUint(expected, 10, 64); err != nil || e >= seq || e == 0 {
									errs <- fmt.Errorf("batch %d: 409 expecting %q", seq, expected)
									return
								}
							case http.StatusTooManyRequests:
							default:
								errs <- fmt.Errorf("batch %d: status %d", seq, status)
								return
							}
							time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
						}
						errs <- fmt.Errorf("batch %d never applied", seq)
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			t.Logf("statuses: %v", codes)
			require.Equal(t, 2*m, codes[http.StatusNoContent])
			require.Equal(t, all, received(t, got, len(all)))
		})
	}
}

// rawPost posts body to the send endpoint without failing the test (for other goroutines),
// and returns the status and the Herald-Expected-Seq header.
func rawPost(hc *http.Client, base, ticket, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/"+fallback.EndpointSend, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Herald-Ticket", ticket)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Herald-Expected-Seq"), nil
}

// TestPostInFlight holds a POST in flight (its body not finished) and posts another for the
// same session: 429 while the first is in flight, applied once it has ended.
func TestPostInFlight(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	h := newHarness(t, "HTTP/1.1", nil, collect(got))
	hc := h.client()
	ticket := openPoll(t, hc, h.base).Ticket

	pr, pw := io.Pipe()
	first := make(chan answer, 1)
	go func() { first <- postReader(t, hc, h.base, fallback.EndpointSend, pr, "Herald-Ticket", ticket) }()
	body := batchBody(1, "first")
	_, err := pw.Write([]byte(body[:5]))
	require.NoError(t, err)
	// Until the first POST has reached the session, the second (batch 2) is a gap: 409.
	require.Eventually(t, func() bool {
		a := post(t, hc, h.base, fallback.EndpointSend, batchBody(2, "second"), "Herald-Ticket", ticket)
		if a.status != http.StatusTooManyRequests {
			require.Equal(t, http.StatusConflict, a.status, "%s", a.body)
			return false
		}
		require.Contains(t, string(a.body), "in flight")
		return true
	}, testTimeout, 2*time.Millisecond)

	_, err = pw.Write([]byte(body[5:]))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	a := <-first
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	a = post(t, hc, h.base, fallback.EndpointSend, batchBody(2, "second"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.Equal(t, []string{"first", "second"}, received(t, got, 2))
}

// TestInboxFull fills the inbox of an application that does not receive: the next batch is
// answered 503 with Retry-After, and applied once retried after the application has received.
func TestInboxFull(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	got := make(chan string, 10)
	h := newHarness(t, "HTTP/1.1", &fallback.Options{InboxBytes: 100}, func(s *fallback.Session) error {
		select {
		case <-release:
		case <-s.Done():
		}
		return collect(got)(s)
	})
	hc := h.client()
	ticket := openPoll(t, hc, h.base).Ticket
	big := strings.Repeat("x", 80)
	a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, big), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	a = post(t, hc, h.base, fallback.EndpointSend, batchBody(2, big+"2"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	require.NotEmpty(t, a.header.Get("Retry-After"))
	close(release)
	require.Equal(t, []string{big}, received(t, got, 1))
	a = post(t, hc, h.base, fallback.EndpointSend, batchBody(2, big+"2"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.Equal(t, []string{big + "2"}, received(t, got, 1))
}

// TestLimits checks the bounds and the refusals of the endpoints: bodies and batches past
// their limits, methods, paths, missing tickets, bodies that are not a batch, ended sessions.
func TestLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{MaxBody: 1024, MaxMessages: 3}, idle)
	hc := h.client()
	o := openPoll(t, hc, h.base)
	require.EqualValues(t, 1024, o.MaxBody)
	require.Equal(t, 3, o.MaxMessages)
	ticket := o.Ticket

	for _, tc := range []struct {
		name     string
		endpoint string
		body     string
		hdr      []string
		status   int
	}{
		{"body past MaxBody", fallback.EndpointSend, batchBody(1, strings.Repeat("x", 1100)), nil, http.StatusRequestEntityTooLarge},
		{"body past MaxBody, not JSON", fallback.EndpointSend, strings.Repeat("x", 5000), nil, http.StatusRequestEntityTooLarge},
		{"poll body past MaxBody", fallback.EndpointPoll, `{"last":0,"x":"` + strings.Repeat("x", 1100) + `"}`, nil, http.StatusRequestEntityTooLarge},
		{"too many messages", fallback.EndpointSend, batchBody(1, "a", "b", "c", "d"), nil, http.StatusRequestEntityTooLarge},
		{"not JSON", fallback.EndpointSend, `{"seq":1,`, nil, http.StatusBadRequest},
		{"not a batch", fallback.EndpointSend, `{"seq":"one","messages":[1]}`, nil, http.StatusBadRequest},
		{"no ticket", fallback.EndpointSend, batchBody(1, "a"), []string{"Herald-Ticket", ""}, http.StatusBadRequest},
		{"poll not JSON", fallback.EndpointPoll, `[`, nil, http.StatusBadRequest},
	} {
		hdr := append([]string{"Herald-Ticket", ticket}, tc.hdr...)
		a := post(t, hc, h.base, tc.endpoint, tc.body, hdr...)
		require.Equal(t, tc.status, a.status, "%s: %s", tc.name, a.body)
		require.Equal(t, "application/json", a.header.Get("Content-Type"), tc.name)
		require.Contains(t, string(a.body), `"statusCode":`+strconv.Itoa(tc.status), tc.name)
	}
	// None of them was applied.
	a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "a", "b", "c"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)

	for _, tc := range []struct {
		method, endpoint, allow string
	}{
		{http.MethodPut, fallback.EndpointStream, "GET, POST"},
		{http.MethodDelete, fallback.EndpointStream, "GET, POST"},
		{http.MethodGet, fallback.EndpointSend, "POST, OPTIONS"},
		{http.MethodPut, fallback.EndpointSend, "POST, OPTIONS"},
		{http.MethodGet, fallback.EndpointPoll, "POST, OPTIONS"},
		{http.MethodPatch, fallback.EndpointPoll, "POST, OPTIONS"},
	} {
		req, err := http.NewRequest(tc.method, h.base+"/"+tc.endpoint, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Herald-Ticket", ticket)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", tc.method, tc.endpoint)
		require.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.endpoint)
	}

	for _, path := range []string{"/nes", "/nes/", "/nes/other", "/sse", "/nes/sse/x", "/nessse"} {
		resp, err := hc.Get(h.ts.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}

	// A session that ended: 410, once the client has heard the close.
	s := h.session()
	require.NoError(t, s.Close(nil))
	require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrClosed)
	a = post(t, hc, h.base, fallback.EndpointSend, batchBody(2, "a"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusGone, a.status, "%s", a.body)
	ev := post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket).events(t)
	require.Len(t, ev, 1)
	require.Equal(t, fallback.EventClose, ev[0].Event)
	a = post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket)
	require.Equal(t, http.StatusGone, a.status, "%s", a.body)
	a = post(t, hc, h.base, fallback.EndpointSend, batchBody(2, "a"), "Herald-Ticket", ticket)
	require.Equal(t, http.StatusGone, a.status, "%s", a.body)
}

// TestPreflight answers an OPTIONS preflight from an allowed origin with the CORS headers, and
// refuses one from another origin.
func TestPreflight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{CheckOrigin: func(r *http.Request) bool {
		return r.Header.Get("Origin") == "https://app.example"
	}}, idle)
	hc := h.client()
	for _, endpoint := range []string{fallback.EndpointStream, fallback.EndpointSend, fallback.EndpointPoll} {
		req, err := http.NewRequest(http.MethodOptions, h.base+"/"+endpoint, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type, herald-ticket")
		resp, err := hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode, endpoint)
		hd := resp.Header
		require.Equal(t, "https://app.example", hd.Get("Access-Control-Allow-Origin"), endpoint)
		require.Equal(t, "true", hd.Get("Access-Control-Allow-Credentials"), endpoint)
		require.Contains(t, hd.Get("Access-Control-Allow-Methods"), "POST", endpoint)
		require.Contains(t, hd.Get("Access-Control-Allow-Methods"), "GET", endpoint)
		for _, name := range []string{"Content-Type", "Herald-Ticket", "Last-Event-ID"} {
			require.Contains(t, hd.Get("Access-Control-Allow-Headers"), name, endpoint)
		}
		require.Contains(t, hd.Get("Access-Control-Expose-Headers"), "Herald-Expected-Seq", endpoint)
		require.Contains(t, hd.Values("Vary"), "Origin", endpoint)
		require.NotEmpty(t, hd.Get("Access-Control-Max-Age"), endpoint)

		req.Header.Set("Origin", "https://evil.example")
		resp, err = hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, endpoint)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), endpoint)
	}

	// The allowed origin's requests get the CORS headers too.
	o := openPoll(t, hc, h.base, "Origin", "https://app.example")
	a := post(t, hc, h.base, fallback.EndpointSend, batchBody(1, "x"), "Origin", "https://app.example", "Herald-Ticket", o.Ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.Equal(t, "https://app.example", a.header.Get("Access-Control-Allow-Origin"))
}
