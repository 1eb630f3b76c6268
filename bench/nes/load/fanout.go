package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/fanload"
)

// dialers is how many subscriber handshakes are in progress at once.
const dialers = 32

// runFanout is mode fanout: see the package comment.
//
// The connections are opened with the Go net package; then the measured part
// reads them all from one loop on epoll, on raw non-blocking descriptors
// (bench/internal/fanload), rather than from a goroutine per connection: on
// this kind of machine a Go reader per connection costs more per message
// (about 8 µs) than a server's own write(2) to that socket (about 5 µs), so
// it, not the server, would set the time to the last subscriber. One loop
// also sends the publishes, so no other goroutine needs to run in the
// measured part.
func runFanout(addr, path, topic string, subs, pubs, warmupPubs int, timeout time.Duration) error {
	res, err := fanload.NesFanout(fanload.Fanout{
		Nodes: []string{addr}, Path: path, Topic: topic, Subs: subs, Dialers: dialers,
		Warmup: warmupPubs, Pubs: pubs, Timeout: timeout,
	})
	if err != nil {
		return err
	}
	printLatencies(res.Last)
	return nil
}

// printLatencies prints the "lat" line: each publish's time to its last
// subscriber, in µs.
func printLatencies(lat []time.Duration) {
	var sb strings.Builder
	sb.WriteString("lat")
	for _, d := range lat {
		fmt.Fprintf(&sb, " %d", d.Microseconds())
	}
	fmt.Println(sb.String())
}
