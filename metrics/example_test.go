package metrics_test

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/metrics"
)

// slowConsumers counts the connections dropped for not reading: a Recorder of one method,
// the others coming from metrics.Nop.
type slowConsumers struct {
	metrics.Nop
	n atomic.Int64
}

func (s *slowConsumers) ConnClosed(t metrics.Transport, r metrics.Reason) {
	if r == metrics.SlowConsumer {
		s.n.Add(1)
	}
}

// A Recorder of your own: embed metrics.Nop and implement what you need. Give it to the nes
// server, and wrap the broker that joins the nodes to measure its publications.
func Example() {
	rec := &slowConsumers{}
	srv := herald.NewServer(http.NotFoundHandler(), &herald.Options{Metrics: rec})
	defer srv.Close()

	hub := broker.NewMemoryHub()
	b := metrics.Broker(hub.Broker(), rec) // pass b to the server's broker option
	_ = b

	fmt.Println(rec.n.Load(), metrics.SlowConsumer, metrics.Poll)
	// Output: 0 slow_consumer poll
}
