//go:build unix

package herald

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-go/herald/metrics"
	heraldprom "github.com/herald-go/herald/metrics/prometheus"
)

// BenchmarkMetricsCost measures what Options.Metrics costs, in one run: nes requests echoed
// by a handler (echo) and publications to 1,000 subscribers (fanout), each without a Recorder
// and with the Prometheus adapter. The sockets' transports are in-process (no network), so the
// CPU time is the server's alone, and the difference is as large a share of it as it can be
// (a network would add the same system time to both). cpu-ns/msg is the process's CPU time
// (user and system, getrusage) per message the server handled: per request for echo, per
// delivery for fanout.
//
//	go test -run '^$' -bench BenchmarkMetricsCost -benchtime 2s -count 5 .
func BenchmarkMetricsCost(b *testing.B) {
	for _, variant := range []string{"none", "prometheus"} {
		b.Run("echo/"+variant, func(b *testing.B) { benchEcho(b, benchRecorder(b, variant)) })
		b.Run("fanout/"+variant, func(b *testing.B) { benchFanout(b, benchRecorder(b, variant)) })
	}
}

func benchRecorder(b *testing.B, variant string) metrics.Recorder {
	if variant == "none" {
		return nil
	}
	rec, err := heraldprom.New(prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return rec
}

func benchServer(rec metrics.Recorder) *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "echo") })
	srv := NewServer(mux, &Options{Metrics: rec, NoFallback: true, Heartbeat: &Heartbeat{Disabled: true}})
	srv.Route("echo", "GET", "/echo")
	srv.Subscription("/feed", nil)
	return srv
}

// cpuTime returns the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEcho(b *testing.B, rec metrics.Recorder) {
	srv := benchServer(rec)
	defer srv.Close()
	ct := startBenchSocket(b, srv)
	msg := []byte(`{"type":"request","id":2,"method":"GET","path":"echo"}`)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		ct.in <- msg
		<-ct.replies
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/msg")
}

// sinkTransport is a subscriber's in-process transport: countTransport's way in, with a Send
// that counts what is sent to it in hub.
type sinkTransport struct {
	*countTransport
	hub *sinkHub
}

// sinkHub counts what the sinks received and signals when a target is reached.
type sinkHub struct {
	sent    atomic.Int64
	target  atomic.Int64
	reached chan struct{}
}

func (t *sinkTransport) Send(ctx context.Context, msg []byte) error {
	if t.hub.sent.Add(1) == t.hub.target.Load() {
		t.hub.reached <- struct{}{}
	}
	return nil
}

func benchFanout(b *testing.B, rec metrics.Recorder) {
	const subscribers = 1000
	srv := benchServer(rec)
	defer srv.Close()
	hub := &sinkHub{reached: make(chan struct{}, 1)}
	r, _ := http.NewRequest("GET", "/", nil)
	// Each sink says hello and subscribes: two replies each.
	hub.target.Store(2 * subscribers)
	for i := range subscribers {
		t := &sinkTransport{countTransport: &countTransport{in: make(chan []byte, 2), done: make(chan struct{})}, hub: hub}
		go srv.serve(t, r)
		t.in <- []byte(`{"type":"hello","id":1,"version":"2"}`)
		t.in <- []byte(`{"type":"sub","id":` + strconv.Itoa(i+2) + `,"path":"/feed"}`)
	}
	<-hub.reached
	message := map[string]any{"event": "price", "value": 42.5}
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		hub.target.Add(subscribers)
		if err := srv.Publish("/feed", message, nil); err != nil {
			b.Fatal(err)
		}
		<-hub.reached
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N*subscribers), "cpu-ns/msg")
}
