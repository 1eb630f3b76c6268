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
//     deliveries per second, and the server's CPU time per publish;
//   - clients: against one server (herald's, and with -clients-servers also
//     hapi), the same requests load from three load clients in turn: the raw
//     one (nes/load), herald's Go client (package client, nes/load -client
//     herald) and the official @hapi/nes client on Node (nes-client-load.js);
//     requests per second and the CLIENT's own CPU time per request;
//   - fallback: against herald's server only (hapi has no fallback), the
//     requests and fan-out loads over WebSocket, over herald's fallback
//     transport with an event stream down and POSTs up (sse), and over its
//     long-polling (poll), nes/load -transport ws|sse|poll; the fan-out's
//     time to the last subscriber over sse against WebSocket's.
//
// It prints markdown tables of medians, spreads and ratios (herald/hapi for
// the servers, herald's client/@hapi/nes's for the clients), judged against
// the bars the issues set, and writes them to results/nes.md. See README.md.
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

// allClients are the load clients of part clients: the raw one, herald's Go
// client and the official @hapi/nes client on Node.
var allClients = []string{"raw", "herald", "node"}

// allParts are the measurements, in the order they run within a repeat.
var allParts = []string{"requests", "fanout", "clients", "fallback"}

// allTransports are what carries nes in part fallback: WebSocket, and
// herald's fallback transport over an event stream (sse) or long-polls
// (poll), with POSTs up.
var allTransports = []string{"ws", "sse", "poll"}

type bench struct {
	harness.Config
	servers    []string
	parts      map[string]bool
	conns      int
	depth      int
	warmup     time.Duration
	duration   time.Duration
	subs       int   // part fallback's fan-out
	fanSubs    []int // part fanout: subscriber counts, each measured
	pubs       int
	warmupPubs int
	clients    []string // part clients: the load clients
	clientSrvs []string // part clients: the servers they run against
	transports []string // part fallback: what carries nes
	node       string
	hapiScript string
	nodeLoad   string // nes-client-load.js
	args       []string
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{args: os.Args[1:]}
	var servers, parts, clients, clientSrvs, transports, fanSubs string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run (parts requests and fanout), comma-separated: herald, hapi, floor")
	flag.StringVar(&parts, "parts", strings.Join(allParts, ","), "measurements to make, comma-separated: requests, fanout, clients, fallback")
	flag.StringVar(&clients, "clients", strings.Join(allClients, ","), "clients: the load clients, comma-separated: raw (nes by hand), herald (herald's Go client), node (@hapi/nes on Node)")
	flag.StringVar(&clientSrvs, "clients-servers", "herald", "clients: the servers the load clients run against, comma-separated: herald, hapi")
	flag.StringVar(&transports, "transports", strings.Join(allTransports, ","), "fallback: what carries nes, comma-separated: ws (WebSocket), sse (event stream down, POSTs up), poll (long-polling, POSTs up)")
	flag.IntVar(&b.Repeat, "repeat", 3, "runs of each server and measurement, each with a fresh server process")
	flag.IntVar(&b.conns, "conns", 32, "requests: connections")
	flag.IntVar(&b.depth, "depth", 1, "requests: requests in flight per connection")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "requests: warm-up before the measured window")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "requests: measured window")
	flag.IntVar(&b.subs, "subs", 1000, "fallback: the fan-out's subscriber connections")
	flag.StringVar(&fanSubs, "fanout-subs", "1000,10000", "fanout: subscriber connections, comma-separated: a fan-out is measured for each")
	flag.IntVar(&b.pubs, "pubs", 100, "fan-out: measured publishes")
	flag.IntVar(&b.warmupPubs, "warmup-pubs", 10, "fan-out: publishes before the measured ones")
	flag.StringVar(&b.node, "node", "node", "the Node.js binary that runs the hapi server and the @hapi/nes client")
	b.Flags(time.Minute, 30*time.Minute, "results/nes.md")
	flag.Parse()

	var err error
	if b.servers, err = harness.ParseList(servers, allServers, false); err != nil {
		log.Fatalf("-servers: %v", err)
	}
	ps, err := harness.ParseList(parts, allParts, false)
	if err != nil {
		log.Fatalf("-parts: %v", err)
	}
	if b.clients, err = harness.ParseList(clients, allClients, false); err != nil {
		log.Fatalf("-clients: %v", err)
	}
	if b.clientSrvs, err = harness.ParseList(clientSrvs, []string{"herald", "hapi"}, false); err != nil {
		log.Fatalf("-clients-servers: %v", err)
	}
	if b.transports, err = harness.ParseList(transports, allTransports, false); err != nil {
		log.Fatalf("-transports: %v", err)
	}
	var bad string
	if b.fanSubs, bad = harness.ParseInts(fanSubs, 1, 19000); bad != "" {
		log.Fatalf("-fanout-subs: bad count %q (1 to 19000: the open-files limit is about 19,900 per process)", bad)
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
	if b.nodeLoad, err = filepath.Abs("nes/nes-client-load.js"); err != nil {
		return err
	}
	if b.runs("hapi") || b.parts["clients"] && slices.Contains(b.clients, "node") {
		if _, err := exec.LookPath(b.node); err != nil {
			return fmt.Errorf("%s not found: the hapi server and the @hapi/nes client need Node.js", b.node)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules/@hapi/nes")); err != nil {
			return errors.New("@hapi/nes is not installed: run `make peers` at the repository root")
		}
	}
	if err := b.build(); err != nil {
		return err
	}

	reqs := map[string][]reqResult{}
	fans := map[int]map[string][]fanResult{}
	for _, n := range b.fanSubs {
		fans[n] = map[string][]fanResult{}
	}
	cls := map[clientRun][]reqResult{}
	fb := fallbackResults{reqs: map[string][]reqResult{}, fans: map[string][]fanResult{}}
	failures := map[string][]string{}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, s := range b.servers {
			if !b.parts["requests"] {
				break
			}
			what := fmt.Sprintf("requests %d/%d %s", rep, b.Repeat, s)
			r, err := harness.Quietly(&b.Config, what, began, func() (reqResult, error) { return b.requests(s, "raw", "ws") })
			if err != nil {
				failures[s] = append(failures[s], fmt.Sprintf("%s: %v", what, err))
				log.Printf("%s: %v", what, err)
				continue
			}
			reqs[s] = append(reqs[s], r)
			log.Printf("%-20s %8.0f req/s %7.2f µs/req   server %3.0f%% client %3.0f%% others %.2f cores",
				what, r.rate, r.cpuPerReq, 100*r.Server, 100*r.Client, r.Other)
		}
		for _, n := range b.fanSubs {
			for _, s := range b.servers {
				if !b.parts["fanout"] {
					break
				}
				what := fmt.Sprintf("fan-out to %d %d/%d %s", n, rep, b.Repeat, s)
				r, err := harness.Quietly(&b.Config, what, began, func() (fanResult, error) { return b.fanout(s, "ws", n) })
				if err != nil {
					failures[s] = append(failures[s], fmt.Sprintf("%s: %v", what, err))
					log.Printf("%s: %v", what, err)
					continue
				}
				fans[n][s] = append(fans[n][s], r)
				log.Printf("%-26s median %6.2f ms p90 %6.2f ms %7.2f ms CPU/publish   server %3.0f%% client %3.0f%% others %.2f cores",
					what, r.median, r.p90, r.cpuPerPub, 100*r.Server, 100*r.Client, r.Other)
			}
		}
		for _, run := range b.clientRuns() {
			if !b.parts["clients"] {
				break
			}
			what := fmt.Sprintf("clients %d/%d %s", rep, b.Repeat, run)
			r, err := harness.Quietly(&b.Config, what, began, func() (reqResult, error) { return b.requests(run.server, run.client, "ws") })
			if err != nil {
				failures[run.String()] = append(failures[run.String()], fmt.Sprintf("%s: %v", what, err))
				log.Printf("%s: %v", what, err)
				continue
			}
			cls[run] = append(cls[run], r)
			log.Printf("%-28s %8.0f req/s   client %6.2f µs/req   server %6.2f µs/req   server %3.0f%% client %3.0f%% others %.2f cores",
				what, r.rate, r.clientPerReq, r.cpuPerReq, 100*r.Server, 100*r.Client, r.Other)
		}
		for _, t := range b.transports {
			if !b.parts["fallback"] {
				break
			}
			what := fmt.Sprintf("fallback requests %d/%d %s", rep, b.Repeat, t)
			r, err := harness.Quietly(&b.Config, what, began, func() (reqResult, error) { return b.requests("herald", "raw", t) })
			if err != nil {
				failures["fallback "+t] = append(failures["fallback "+t], fmt.Sprintf("%s: %v", what, err))
				log.Printf("%s: %v", what, err)
				continue
			}
			fb.reqs[t] = append(fb.reqs[t], r)
			log.Printf("%-28s %8.0f req/s   client %6.2f µs/req   server %6.2f µs/req   server %3.0f%% client %3.0f%% others %.2f cores",
				what, r.rate, r.clientPerReq, r.cpuPerReq, 100*r.Server, 100*r.Client, r.Other)
		}
		for _, t := range b.transports {
			if !b.parts["fallback"] {
				break
			}
			what := fmt.Sprintf("fallback fan-out %d/%d %s", rep, b.Repeat, t)
			r, err := harness.Quietly(&b.Config, what, began, func() (fanResult, error) { return b.fanout("herald", t, b.subs) })
			if err != nil {
				failures["fallback "+t] = append(failures["fallback "+t], fmt.Sprintf("%s: %v", what, err))
				log.Printf("%s: %v", what, err)
				continue
			}
			fb.fans[t] = append(fb.fans[t], r)
			log.Printf("%-28s median %6.2f ms p90 %6.2f ms %7.2f ms CPU/publish   server %3.0f%% client %3.0f%% others %.2f cores",
				what, r.median, r.p90, r.cpuPerPub, 100*r.Server, 100*r.Client, r.Other)
		}
	}
	if err := b.WriteReport(b.report(reqs, fans, cls, fb, failures, time.Since(began))); err != nil {
		return err
	}
	if len(failures) > 0 {
		return errors.New("some runs failed: see the report")
	}
	return nil
}

// runs reports whether some part runs the server s.
func (b *bench) runs(s string) bool {
	return (b.parts["requests"] || b.parts["fanout"]) && slices.Contains(b.servers, s) ||
		b.parts["clients"] && slices.Contains(b.clientSrvs, s) ||
		b.parts["fallback"] && s == "herald"
}

// build compiles the load client (both its raw nes and herald's Go client)
// and the floor server (in this module) and herald's nes demo (in herald's
// own module, with its own go.mod).
func (b *bench) build() error {
	log.Printf("building the load client and herald's examples/nes")
	if err := b.Build("", "load", "./nes/load"); err != nil {
		return err
	}
	if b.runs("floor") {
		if err := b.Build("", "floor", "./nes/floor"); err != nil {
			return err
		}
	}
	if b.runs("herald") {
		return b.Build("..", "herald", "./examples/nes")
	}
	return nil
}
