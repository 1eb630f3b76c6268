package nats_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/internal/testpeers"
)

// hopHandler records how long each message took from Publish on one node to HandleMessage on
// another.
type hopHandler struct {
	start time.Time
	mu    sync.Mutex
	lat   []time.Duration
	done  chan struct{}
	want  int
}

func (h *hopHandler) HandleNode(string, []byte)           {}
func (h *hopHandler) HandleDiscontinuity([]string, error) {}

func (h *hopHandler) HandleMessage(topic string, payload []byte, pos broker.Position) {
	sent := time.Duration(binary.LittleEndian.Uint64(payload))
	d := time.Since(h.start) - sent
	h.mu.Lock()
	h.lat = append(h.lat, d)
	if len(h.lat) == h.want {
		close(h.done)
	}
	h.mu.Unlock()
}

// BenchmarkHop measures the broker hop: a 64-byte message published on node A and heard on
// node B through an embedded nats-server on loopback, paced at 10,000 messages a second.
// It reports the p50 and p99 latency:
//
//	go test -run '^$' -bench Hop -benchtime 20000x ./broker/nats/
func BenchmarkHop(b *testing.B) {
	srv := testpeers.StartNATS(b)
	ctx := context.Background()
	h := &hopHandler{start: time.Now(), done: make(chan struct{}), want: b.N, lat: make([]time.Duration, 0, b.N)}
	nodeA, nodeB := nats.New(srv.URL(), nil), nats.New(srv.URL(), nil)
	if err := nodeA.Start(ctx, "a", brokertest.NewRecorder(b)); err != nil {
		b.Fatal(err)
	}
	defer nodeA.Close()
	if err := nodeB.Start(ctx, "b", h); err != nil {
		b.Fatal(err)
	}
	defer nodeB.Close()
	if err := nodeB.Subscribe(ctx, "hop"); err != nil {
		b.Fatal(err)
	}
	const interval = 100 * time.Microsecond // 10,000 a second
	payload := make([]byte, 64)
	b.ResetTimer()
	next := time.Now()
	for range b.N {
		for {
			wait := time.Until(next)
			if wait <= 0 {
				break
			}
			if wait > 50*time.Microsecond {
				time.Sleep(wait - 50*time.Microsecond)
			}
		}
		next = next.Add(interval)
		binary.LittleEndian.PutUint64(payload, uint64(time.Since(h.start)))
		if _, err := nodeA.Publish(ctx, "hop", payload, broker.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		b.Fatalf("b heard %d of %d messages", len(h.lat), b.N)
	}
	b.StopTimer()
	h.mu.Lock()
	lat := slices.Clone(h.lat)
	h.mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
