package herald_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	heraldprom "github.com/herald-go/herald/metrics/prometheus"
)

// TestPrometheusMetricsAfterScriptedTraffic drives a server over each transport (a WebSocket,
// an event stream, long-polls), with requests answered 200 and 404, a publication, a
// broadcast, a slow consumer dropped, and fallback streams resumed (a hit), reset and unknown
// (a miss); then it scrapes /metrics and checks each figure against what was done, and again
// after Shutdown.
func TestPrometheusMetricsAfterScriptedTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := heraldprom.New(reg, nil)
	require.NoError(t, err)

	app := http.NewServeMux()
	app.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"hello":"world"}`)
	})
	srv := herald.NewServer(app, &herald.Options{
		Metrics:        rec,
		SendQueueLimit: 17 << 20,
		HelloTimeout:   -1, // the raw event streams below never say hello
		Heartbeat:      &herald.Heartbeat{Disabled: true},
	})
	srv.Route("hello", "GET", "/hello")
	srv.Subscription("/feed", nil)
	srv.Subscription("/slow", nil)
	top := http.NewServeMux()
	top.Handle("/metrics", heraldprom.Handler(reg))
	top.Handle("/", srv)
	hs := httptest.NewServer(top)
	defer hs.Close()
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// One client per transport, each subscribed to /feed.
	got := make(chan string, 16)
	var clients []*client.Client
	for _, transport := range []string{client.TransportWebSocket, client.TransportSSE, client.TransportPoll} {
		c, err := client.New(wsURL, &client.Options{Transports: []string{transport}, NoReconnect: true,
			OnUpdate: func(json.RawMessage) { got <- transport + " update" }})
		require.NoError(t, err)
		require.NoError(t, c.Connect(ctx), transport)
		defer c.Close()
		_, err = c.Subscribe(ctx, "/feed", func(client.Update) { got <- transport + " pub" })
		require.NoError(t, err)
		clients = append(clients, c)
	}
	wsc := clients[0]
	for range 2 {
		res, err := wsc.Request(ctx, "hello")
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode)
	}
	_, err = wsc.Request(ctx, "/missing")
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 404, ce.StatusCode)

	require.NoError(t, srv.Publish("/feed", map[string]int{"n": 1}, nil))
	require.NoError(t, srv.Broadcast("all", nil))
	seen := map[string]bool{}
	for len(seen) < 6 {
		select {
		case m := <-got:
			seen[m] = true
		case <-ctx.Done():
			t.Fatalf("only %v arrived", seen)
		}
	}

	// A slow consumer: it says hello, subscribes to /slow, and reads no more. The first
	// publication (8 MiB) cannot fit in the kernel's buffers; the second queues behind it (a
	// backlog of 16 MiB, under SendQueueLimit); the third would pass the limit, which drops
	// the socket. None is delivered.
	slow := dialRawWS(t, ctx, wsURL)
	slow.send(t, `{"type":"hello","id":1,"version":"2"}`)
	slow.read(t)
	slow.send(t, `{"type":"sub","id":2,"path":"/slow"}`)
	slow.read(t)
	big := strings.Repeat("x", 8<<20)
	for range 3 {
		require.NoError(t, srv.Publish("/slow", big, nil))
	}

	// Fallback streams by hand: one opened and left, then resumed (a hit); resumed at a seq
	// never sent (a reset, and a new session); resumed with an id not of this server (a miss,
	// and a new session).
	open := openStream(t, ctx, hs.URL+"/nes/sse", "")
	first := open.expect(t, "herald-open")
	open.close()
	ticket := first.id[:strings.LastIndexByte(first.id, '.')]
	resumed := openStream(t, ctx, hs.URL+"/nes/sse", ticket+".0")
	require.Contains(t, resumed.expect(t, "herald-open").data, `"resumed":true`)
	resumed.close()
	reset := openStream(t, ctx, hs.URL+"/nes/sse", ticket+".99")
	reset.expect(t, "herald-reset")
	require.Contains(t, reset.expect(t, "herald-open").data, `"resumed":false`)
	reset.close()
	miss := openStream(t, ctx, hs.URL+"/nes/sse", "not-a-ticket")
	miss.expect(t, "herald-reset")
	miss.expect(t, "herald-open")
	miss.close()

	// What was done, as the scrape must show it. The slow socket and the reset session close
	// on their own goroutines: wait for them.
	want := map[string]float64{
		`herald_connects_total{transport="websocket"}`:                            2, // the client, the slow one
		`herald_connects_total{transport="sse"}`:                                  4, // the client, and the raw sessions: first, after the reset, after the miss
		`herald_connects_total{transport="poll"}`:                                 1,
		`herald_connections{transport="websocket"}`:                               1,
		`herald_connections{transport="sse"}`:                                     3,
		`herald_connections{transport="poll"}`:                                    1,
		`herald_disconnects_total{reason="slow_consumer",transport="websocket"}`:  1,
		`herald_disconnects_total{reason="normal",transport="sse"}`:               1, // the reset session
		`herald_messages_received_total{transport="websocket"}`:                   7, // client: hello, sub, 3 requests; slow: hello, sub
		`herald_messages_received_total{transport="sse"}`:                         2, // hello, sub
		`herald_messages_received_total{transport="poll"}`:                        2,
		`herald_messages_sent_total{transport="websocket"}`:                       9, // client: 5 replies, the publication, the broadcast; slow: 2 replies
		`herald_messages_sent_total{transport="sse"}`:                             4, // 2 replies, the publication, the broadcast
		`herald_messages_sent_total{transport="poll"}`:                            4,
		`herald_deliveries_total{transport="websocket"}`:                          2,
		`herald_deliveries_total{transport="sse"}`:                                2,
		`herald_deliveries_total{transport="poll"}`:                               2,
		`herald_publications_total`:                                               5, // /feed, the broadcast, /slow three times
		`herald_request_duration_seconds_count{route="hello",status="200"}`:       2,
		`herald_request_duration_seconds_count{route="other",status="404"}`:       1,
		`herald_resumes_total{result="hit"}`:                                      1,
		`herald_resumes_total{result="reset"}`:                                    1,
		`herald_resumes_total{result="miss"}`:                                     1,
		`herald_broker_publish_duration_seconds_count`:                            0,
		`herald_deflate_in_bytes_total`:                                           0,
		`herald_disconnects_total{reason="protocol_error",transport="websocket"}`: 0,
	}
	// Sockets open and close on goroutines of their own (a fallback session's socket starts
	// after its open event went out): wait until the figures settle, then compare.
	var samples map[string]float64
	settled := func() bool {
		samples = scrape(t, hs.URL+"/metrics")
		for name, v := range want {
			if samples[name] != v {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !settled() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	for name, v := range want {
		assert.Equal(t, v, samples[name], name)
	}
	// Nothing closed for any other reason.
	for name, v := range samples {
		if strings.HasPrefix(name, "herald_disconnects_total") && want[name] == 0 {
			assert.Zero(t, v, name)
		}
	}
	// The queues: the slow consumer's backlog of two publications was observed (other
	// messages may have queued behind one another too, as timing has it).
	assert.GreaterOrEqual(t, samples[`herald_send_queue_bytes_count{transport="websocket"}`], 1.0)
	assert.GreaterOrEqual(t, samples[`herald_send_queue_bytes_sum{transport="websocket"}`], float64(16<<20))
	// The bytes: what was received and sent adds up to more than the messages' fixed parts.
	assert.Less(t, samples[`herald_sent_bytes_total{transport="websocket"}`], float64(8<<20), "the dropped publication counts as sent")
	assert.Greater(t, samples[`herald_received_bytes_total{transport="websocket"}`], float64(len(`{"type":"hello","id":1,"version":"2"}`)+len(`{"type":"sub","id":2,"path":"/slow"}`)))
	assert.Greater(t, samples[`herald_sent_bytes_total{transport="sse"}`], float64(2*len(`{"type":"pub","path":"/feed"`)))

	// Shutdown: every open connection closes for that reason.
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	require.NoError(t, srv.Shutdown(sctx))
	samples = scrape(t, hs.URL+"/metrics")
	assert.Equal(t, 1.0, samples[`herald_disconnects_total{reason="shutdown",transport="websocket"}`])
	assert.Equal(t, 3.0, samples[`herald_disconnects_total{reason="shutdown",transport="sse"}`])
	assert.Equal(t, 1.0, samples[`herald_disconnects_total{reason="shutdown",transport="poll"}`])
	for _, tr := range []string{"websocket", "sse", "poll"} {
		assert.Zero(t, samples[`herald_connections{transport="`+tr+`"}`], tr)
	}
}

// scrape reads the Prometheus text at url into name{labels} → value (histograms as _count
// and _sum).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name + labelString(m.GetLabel())
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labelString(m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labelString(m.GetLabel())] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func labelString(labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range labels { // sorted by name already
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName() + `="` + l.GetValue() + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

// rawWS is a WebSocket client that speaks nes by hand and reads only when asked.
type rawWS struct {
	conn net.Conn
	rd   io.Reader
}

func dialRawWS(t *testing.T, ctx context.Context, url string) *rawWS {
	t.Helper()
	return dialRawWSHeader(t, ctx, url, nil)
}

// dialRawWSHeader is dialRawWS with extra handshake headers.
func dialRawWSHeader(t *testing.T, ctx context.Context, url string, header http.Header) *rawWS {
	t.Helper()
	conn, br, _, err := ws.Dialer{Header: ws.HandshakeHeaderHTTP(header)}.Dial(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10) // keep the kernel from absorbing much
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	return &rawWS{conn: conn, rd: rd}
}

func (c *rawWS) send(t *testing.T, msg string) {
	t.Helper()
	require.NoError(t, wsutil.WriteClientText(c.conn, []byte(msg)))
}

func (c *rawWS) read(t *testing.T) string {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, _, err := wsutil.ReadServerData(struct {
		io.Reader
		io.Writer
	}{c.rd, c.conn})
	require.NoError(t, err)
	return string(data)
}

// rawStream reads a fallback event stream by hand.
type rawStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

type rawEvent struct{ typ, id, data string }

func openStream(t *testing.T, ctx context.Context, url, lastEventID string) *rawStream {
	t.Helper()
	h := http.Header{}
	if lastEventID != "" {
		h.Set("Last-Event-ID", lastEventID)
	}
	return openStreamHeader(t, ctx, url, h)
}

// openStreamHeader opens an event stream with extra request headers.
func openStreamHeader(t *testing.T, ctx context.Context, url string, header http.Header) *rawStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	st := &rawStream{body: res.Body, sc: bufio.NewScanner(res.Body)}
	t.Cleanup(st.close)
	return st
}

// expect reads events until one of type typ, skipping others' kinds only when they are
// comments; any other event first fails the test.
func (st *rawStream) expect(t *testing.T, typ string) rawEvent {
	t.Helper()
	var ev rawEvent
	for st.sc.Scan() {
		line := st.sc.Text()
		switch {
		case line == "":
			if ev.typ == "" && ev.data == "" && ev.id == "" {
				continue // a retry field or a comment
			}
			require.Equal(t, typ, ev.typ, "data %q", ev.data)
			return ev
		case strings.HasPrefix(line, "event:"):
			ev.typ = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "id:"):
			ev.id = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "data:"):
			ev.data += strings.TrimSpace(line[5:])
		}
	}
	t.Fatalf("the stream ended before %s: %v", typ, errors.Join(st.sc.Err(), io.EOF))
	return ev
}

func (st *rawStream) close() { _ = st.body.Close() }
