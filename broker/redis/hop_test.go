package redis_test

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/internal/testpeers"
)

// hopHandler records when each message arrives, by the index in its first 8 bytes.
type hopHandler struct {
	arrived []time.Time
	mu      sync.Mutex
	n       int
	done    chan struct{}
}

func (h *hopHandler) HandleNode(string, []byte)                      {}
func (h *hopHandler) HandleDiscontinuity(topics []string, err error) {}

func (h *hopHandler) HandleMessage(topic string, payload []byte, pos broker.Position) {
	now := time.Now()
	i := binary.BigEndian.Uint64(payload)
	h.mu.Lock()
	defer h.mu.Unlock()
	if i < uint64(len(h.arrived)) && h.arrived[i].IsZero() {
		h.arrived[i] = now
		if h.n++; h.n == len(h.arrived) {
			close(h.done)
		}
	}
}

// TestHop measures the broker hop: a 64-byte message published on node A, heard on node B,
// paced at 10,000 a second for 3 s, through one redis-server on loopback; with and without
// history. It runs only with HERALD_REDIS_HOP=1, and logs p50, p99 and the maximum:
//
//	HERALD_REDIS_HOP=1 go test -run TestHop -v -count=1 ./broker/redis/
func TestHop(t *testing.T) {
	if os.Getenv("HERALD_REDIS_HOP") != "1" {
		t.Skip("a measurement: run with HERALD_REDIS_HOP=1")
	}
	srv := testpeers.StartRedis(t, nil)
	t.Logf("%s", testpeers.RedisVersion())
	for _, history := range []bool{false, true} {
		const rate, seconds = 10000, 3
		n := rate * seconds
		a := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
		b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
		startNode(t, a, brokertest.Unique("a-"))
		h := &hopHandler{arrived: make([]time.Time, n), done: make(chan struct{})}
		if err := b.Start(ctx10(t), brokertest.Unique("b-"), h); err != nil {
			t.Fatal(err)
		}
		topic := brokertest.Unique("hop/")
		if err := b.Subscribe(ctx10(t), topic); err != nil {
			t.Fatal(err)
		}
		var opts broker.PublishOptions
		if history {
			opts.History = &broker.HistoryPolicy{Size: 1000, TTL: time.Minute}
		}
		sent := make([]time.Time, n)
		jobs := make(chan int, 1024)
		var wg sync.WaitGroup
		var failed sync.Once
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				payload := make([]byte, 64)
				for i := range jobs {
					binary.BigEndian.PutUint64(payload, uint64(i))
					sent[i] = time.Now()
					if _, err := a.Publish(context.Background(), topic, payload, opts); err != nil {
						failed.Do(func() { t.Errorf("Publish: %v", err) })
					}
				}
			}()
		}
		start := time.Now()
		for i := range n {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
				time.Sleep(d)
			}
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
		}
		h.mu.Lock()
		var lat []time.Duration
		for i, at := range h.arrived {
			if !at.IsZero() {
				lat = append(lat, at.Sub(sent[i]))
			}
		}
		h.mu.Unlock()
		a.Close()
		b.Close()
		if len(lat) == 0 {
			t.Fatal("nothing heard")
		}
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Microsecond) }
		t.Logf("history=%v: %d of %d heard at %.0f/s: p50 %v, p90 %v, p99 %v, max %v",
			history, len(lat), n, float64(n)/elapsed.Seconds(), q(0.5), q(0.9), q(0.99), q(1))
	}
}
