// Command nes runs the nes benchmark: herald's nes server (examples/nes)
// against hapi + @hapi/nes (internal/testpeers/hapi-nes-server.js), each in
// its own process, under one load client in another process. A third server,
// nes/floor, does the least a Go server can to send the same bytes: a lower
// bound to read herald's numbers against.
//
// Run it from bench/:
//
//	go run ./nes
//
// It builds herald's demo server and the load client (nes/load), then for
// every repeat and server starts a fresh server pinned to one core
// (taskset -c 0) and the load client pinned to the other (taskset -c 1), and
// measures two things:
//
//   - requests: -conns connections each keep -depth nes requests GET /h in
//     flight; requests per second, and the server's user+system CPU time
//     (from /proc/PID/stat) per request;
//   - fan-out: -subs connections subscribe to /item/5, one more publishes
//     to it -pubs times in a row (a nes request POST /publish); the time from
//     a publish's send until the last subscriber has it (median and p90),
//     deliveries per second, and the server's CPU time per publish.
//
// It prints one markdown table of medians, spreads and herald/hapi ratios,
// judged against the bar the issue set, and writes it to results/nes.md.
// See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

var allServers = []string{"herald", "hapi", "floor"}

type bench struct {
	harness.Config
	servers    []string
	parts      map[string]bool
	conns      int
	depth      int
	warmup     time.Duration
	duration   time.Duration
	subs       int
	pubs       int
	warmupPubs int
	node       string
	hapiScript string
	args       []string
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{args: os.Args[1:]}
	var servers, parts string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run, comma-separated: herald, hapi, floor")
	flag.StringVar(&parts, "parts", "requests,fanout", "measurements to make, comma-separated: requests, fanout")
	flag.IntVar(&b.Repeat, "repeat", 3, "runs of each server and measurement, each with a fresh server process")
	flag.IntVar(&b.conns, "conns", 32, "requests: connections")
	flag.IntVar(&b.depth, "depth", 1, "requests: requests in flight per connection")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "requests: warm-up before the measured window")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "requests: measured window")
	flag.IntVar(&b.subs, "subs", 1000, "fan-out: subscriber connections")
	flag.IntVar(&b.pubs, "pubs", 100, "fan-out: measured publishes")
	flag.IntVar(&b.warmupPubs, "warmup-pubs", 10, "fan-out: publishes before the measured ones")
	flag.StringVar(&b.node, "node", "node", "the Node.js binary that runs the hapi server")
	b.Flags(time.Minute, 30*time.Minute, "results/nes.md")
	flag.Parse()

	var err error
	if b.servers, err = harness.ParseList(servers, allServers, false); err != nil {
		log.Fatalf("-servers: %v", err)
	}
	ps, err := harness.ParseList(parts, []string{"requests", "fanout"}, false)
	if err != nil {
		log.Fatalf("-parts: %v", err)
	}
	b.parts = map[string]bool{}
	for _, p := range ps {
		b.parts[p] = true
	}
	if b.Repeat < 1 || b.conns < 1 || b.depth < 1 || b.duration <= 0 || b.subs < 1 || b.pubs < 1 || b.warmupPubs < 0 {
		log.Fatal("-repeat, -conns, -depth, -duration, -subs and -pubs must be above zero, and -warmup-pubs not below")
	}
	harness.Main(b.run)
}

func (b *bench) run() error {
	cleanup, err := b.Setup("./nes")
	if err != nil {
		return err
	}
	defer cleanup()
	script, err := filepath.Abs("../internal/testpeers/hapi-nes-server.js")
	if err != nil {
		return err
	}
	b.hapiScript = script
	if slices.Contains(b.servers, "hapi") {
		if _, err := exec.LookPath(b.node); err != nil {
			return fmt.Errorf("%s not found: the hapi server needs Node.js", b.node)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules/@hapi/nes")); err != nil {
			return errors.New("@hapi/nes is not installed: run `make peers` at the repository root")
		}
	}
	if err := b.build(); err != nil {
		return err
	}

	reqs := map[string][]reqResult{}
	fans := map[string][]fanResult{}
	failures := map[string][]string{}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, s := range b.servers {
			if !b.parts["requests"] {
				break
			}
			what := fmt.Sprintf("requests %d/%d %s", rep, b.Repeat, s)
			r, err := harness.Quietly(&b.Config, what, began, func() (reqResult, error) { return b.requests(s) })
			if err != nil {
				failures[s] = append(failures[s], fmt.Sprintf("%s: %v", what, err))
				log.Printf("%s: %v", what, err)
				continue
			}
			reqs[s] = append(reqs[s], r)
			log.Printf("%-20s %8.0f req/s %7.2f µs/req   server %3.0f%% client %3.0f%% others %.2f cores",
				what, r.rate, r.cpuPerReq, 100*r.Server, 100*r.Client, r.Other)
		}
		for _, s := range b.servers {
			if !b.parts["fanout"] {
				break
			}
			what := fmt.Sprintf("fan-out %d/%d %s", rep, b.Repeat, s)
			r, err := harness.Quietly(&b.Config, what, began, func() (fanResult, error) { return b.fanout(s) })
			if err != nil {
				failures[s] = append(failures[s], fmt.Sprintf("%s: %v", what, err))
				log.Printf("%s: %v", what, err)
				continue
			}
			fans[s] = append(fans[s], r)
			log.Printf("%-20s median %6.2f ms p90 %6.2f ms %7.2f ms CPU/publish   server %3.0f%% client %3.0f%% others %.2f cores",
				what, r.median, r.p90, r.cpuPerPub, 100*r.Server, 100*r.Client, r.Other)
		}
	}
	if err := b.WriteReport(b.report(reqs, fans, failures, time.Since(began))); err != nil {
		return err
	}
	if len(failures) > 0 {
		return errors.New("some runs failed: see the report")
	}
	return nil
}

// build compiles the load client and the floor server (in this module) and
// herald's nes demo (in herald's own module, with its own go.mod).
func (b *bench) build() error {
	log.Printf("building the load client and herald's examples/nes")
	if err := b.Build("", "load", "./nes/load"); err != nil {
		return err
	}
	if slices.Contains(b.servers, "floor") {
		if err := b.Build("", "floor", "./nes/floor"); err != nil {
			return err
		}
	}
	if slices.Contains(b.servers, "herald") {
		return b.Build("..", "herald", "./examples/nes")
	}
	return nil
}
