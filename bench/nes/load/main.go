// Command load is the nes benchmark's load client: nes spoken by hand over a
// raw WebSocket client (bench/internal/wsraw: handshake, frames, masks; no
// library, no compression offered), so that herald and @hapi/nes face the
// same client.
//
// Mode requests opens -conns connections, sends each a hello, then keeps
// -depth requests {type:'request', method:'GET', path:'/h'} in flight on
// each (a new one as each reply arrives, every reply checked), warms up for
// -warmup, and prints
//
//	start
//	stop reqs=N secs=S cpu=C
//
// around a measured window of -duration, where cpu is the client's own
// user+system seconds in the window.
//
// Mode fanout opens -subs subscriber connections (hello, then a sub to
// -topic; each is read continuously by its own goroutine) and one publisher
// connection, prints "open N", then publishes -warmup-pubs and -pubs times,
// one after another: a nes request POST /publish {path: topic, message:
// {seq, status}} and, once its reply and all N deliveries of that seq have
// arrived, the next. Around the measured publishes it prints
//
//	start
//	stop pubs=N secs=S cpu=C
//	lat µs µs ...
//
// where each µs is one publish's time from just before its request was
// written until the last subscriber had read the publication.
//
// Both modes answer the servers' heartbeat pings as the @hapi/nes client
// does. Every wait is bounded; the process exits by itself after -max-time.
// Connections are closed with SO_LINGER 0, so runs leave no TIME_WAIT
// behind.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	var (
		mode       = flag.String("mode", "requests", "requests or fanout")
		addr       = flag.String("addr", "127.0.0.1:8000", "server address (host:port on loopback)")
		path       = flag.String("path", "/", "WebSocket path")
		conns      = flag.Int("conns", 32, "requests: connections")
		depth      = flag.Int("depth", 1, "requests: requests in flight per connection")
		warmup     = flag.Duration("warmup", time.Second, "requests: warm-up before the measured window")
		duration   = flag.Duration("duration", 5*time.Second, "requests: measured window")
		subs       = flag.Int("subs", 1000, "fanout: subscriber connections")
		topic      = flag.String("topic", "/item/5", "fanout: subscription path published to")
		pubs       = flag.Int("pubs", 100, "fanout: measured publishes")
		warmupPubs = flag.Int("warmup-pubs", 10, "fanout: publishes before the measured ones")
		timeout    = flag.Duration("timeout", 10*time.Second, "the longest wait for a handshake, a reply or a publish's deliveries")
		maxTime    = flag.Duration("max-time", 10*time.Minute, "exit with an error after this long, whatever happens")
	)
	flag.Parse()
	time.AfterFunc(*maxTime, func() {
		fmt.Fprintf(os.Stderr, "load: still running after -max-time %v\n", *maxTime)
		os.Exit(2)
	})
	wsraw.Main(*mode, map[string]func() error{
		"requests": func() error {
			if *conns < 1 || *depth < 1 || *duration <= 0 {
				return fmt.Errorf("-conns, -depth and -duration must be above zero")
			}
			return runRequests(*addr, *path, *conns, *depth, wsraw.Load{Warmup: *warmup, Duration: *duration}, *timeout)
		},
		"fanout": func() error {
			if *subs < 1 || *pubs < 1 || *warmupPubs < 0 {
				return fmt.Errorf("-subs and -pubs must be above zero")
			}
			return runFanout(*addr, *path, *topic, *subs, *pubs, *warmupPubs, *timeout)
		},
	})
}
