// Command load is the cluster benchmark's load client. It opens -subs subscriber connections
// spread round-robin over the nodes of -addrs (subscriber i on node i mod len(-addrs)), each
// sending a nes hello and a subscription to -topic, and one publisher connection to the first
// node; then every connection is read by one epoll loop. It prints "open N", then publishes
// -warmup-pubs and -pubs times, one after another: a nes request POST /publish
// {path: topic, message: {seq, status}} on the publisher's node and, once its reply and every
// subscriber's delivery of that seq have arrived, the next. Around the measured publishes it
// prints
//
//	start
//	stop pubs=N secs=S cpu=C
//	lat n=N p50=A p99=B max=C last50=D last99=E
//
// where cpu is the client's own user+system seconds in the window, and the lat line is in µs:
// p50, p99 and max over every delivery (from just before the publish request was written until
// the epoll loop read that subscriber's publication), and last50, last99 over each publish's
// time to its last subscriber.
//
// A warm-up publish that does not reach every subscriber within -timeout is tolerated (a node's
// broker subscription may still be settling); a measured one fails the run. The client answers
// the servers' nes heartbeat pings, bounds every wait, exits by itself after -max-time, and
// closes its sockets with SO_LINGER 0, so runs leave no TIME_WAIT behind.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/fanload"
	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	addrs := flag.String("addrs", "", "nodes' host:port, comma-separated: subscribers are spread over them, the publisher uses the first")
	path := flag.String("path", "/", "WebSocket path")
	topic := flag.String("topic", "/item/5", "subscription path")
	subs := flag.Int("subs", 1000, "subscriber connections")
	pubs := flag.Int("pubs", 100, "measured publishes")
	warmupPubs := flag.Int("warmup-pubs", 10, "publishes before the measured ones")
	timeout := flag.Duration("timeout", 10*time.Second, "the longest wait for a handshake, a reply or a publish's deliveries")
	maxTime := flag.Duration("max-time", 10*time.Minute, "exit with an error after this long, whatever happens")
	flag.Parse()
	time.AfterFunc(*maxTime, func() {
		fmt.Fprintf(os.Stderr, "load: still running after -max-time %v\n", *maxTime)
		os.Exit(1)
	})
	wsraw.Main("fanout", map[string]func() error{"fanout": func() error {
		nodes := strings.Split(*addrs, ",")
		if *addrs == "" || *subs < 1 || *pubs < 1 || *warmupPubs < 0 {
			return errors.New("-addrs must name a node, -subs and -pubs be above zero, -warmup-pubs not below")
		}
		return runFanout(nodes, *path, *topic, *subs, *pubs, *warmupPubs, *timeout)
	}})
}

// dialers is how many subscriber handshakes are in progress at once.
const dialers = 32

// runFanout is the client's one mode: see the package comment. The connections are read by
// one epoll loop on raw descriptors (bench/internal/fanload, as bench/nes's load client): a
// Go reader per connection would cost the client more per delivery than the server's write,
// and its scheduling would land in the latencies.
func runFanout(nodes []string, path, topic string, subs, pubs, warmupPubs int, timeout time.Duration) error {
	res, err := fanload.NesFanout(fanload.Fanout{
		Nodes: nodes, Path: path, Topic: topic, Subs: subs, Dialers: dialers,
		Warmup: warmupPubs, Pubs: pubs, Timeout: timeout,
		TolerateWarmup: true, Deliveries: true,
	})
	if err != nil {
		return err
	}
	lat, last := res.Deliveries, res.Last
	slices.Sort(lat)
	slices.Sort(last)
	fmt.Printf("lat n=%d p50=%d p99=%d max=%d last50=%d last99=%d missed=%d\n", len(lat),
		quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1), quantile(last, 0.5), quantile(last, 0.99), res.Missed)
	return nil
}

// quantile returns the q quantile of sorted durations, interpolating between neighbours
// (harness.Quantile, as the reports' other medians), in µs.
func quantile(xs []time.Duration, q float64) int64 {
	return time.Duration(harness.Quantile(xs, q)).Microseconds()
}
