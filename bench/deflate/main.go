// Command deflate runs the compressed echo benchmark: herald's WebSocket
// server with permessage-deflate side by side with gorilla/websocket,
// lxzan/gws, coder/websocket and gobwas/ws (wsflate), each in its own
// process, against one load client (deflate/load) that speaks
// permessage-deflate itself.
//
// Run it from bench/:
//
//	go run ./deflate
//
// For every repeat, offer and server it starts a fresh server pinned to one
// core (taskset -c 0) and the load client pinned to the other (taskset -c
// 1), and measures an echo window of 16 KiB JSON documents: messages per
// second, the server's user+system CPU time (from /proc/PID/stat) per
// message and the socket bytes per message both ways. Then it opens
// -mem-conns connections to a fresh server, each echoing one document, and
// reads how much the server's RSS grew per connection. It prints one
// markdown table of medians, spreads and ratios to herald, judged against
// the bar the issue set, and writes it to results/deflate.md. See
// deflate/README.md.
package main

import (
	"flag"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

// allServers are the servers under servers/ that take -deflate.
var allServers = []string{"herald", "gorilla", "gws", "coder", "gobwas"}

// offer is a Sec-WebSocket-Extensions header the client offers.
type offer struct {
	name   string
	header string
}

var offers = []offer{
	{"client-no-context", "permessage-deflate; client_no_context_takeover"},
	{"browser", "permessage-deflate; client_max_window_bits"},
}

type bench struct {
	harness.Config
	servers    []string
	offers     []offer
	conns      int
	memConns   int
	warmup     time.Duration
	duration   time.Duration
	buildFails map[string]string
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{}
	var servers, offerNames string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run, comma-separated; NAME@-flag=value+-flag2=value starts NAME with extra flags")
	flag.StringVar(&offerNames, "offers", "client-no-context,browser", "offers to run: client-no-context (permessage-deflate; client_no_context_takeover), browser (permessage-deflate; client_max_window_bits)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "measured window of each echo run")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "warm-up before each measured window")
	flag.IntVar(&b.Repeat, "repeat", 3, "runs of each server and offer (echo and memory)")
	flag.IntVar(&b.conns, "conns", 32, "echo connections (one message in flight each)")
	flag.IntVar(&b.memConns, "mem-conns", 1000, "connections for the memory measurement (0 skips it)")
	b.Flags(5*time.Second, 10*time.Minute, "results/deflate.md")
	flag.Parse()

	var err error
	if b.servers, err = harness.ParseList(servers, allServers, true); err != nil {
		log.Fatalf("-servers: %v", err)
	}
	names, err := harness.ParseList(offerNames, []string{"client-no-context", "browser"}, false)
	if err != nil {
		log.Fatalf("-offers: %v", err)
	}
	for _, n := range names {
		b.offers = append(b.offers, offers[slices.IndexFunc(offers, func(o offer) bool { return o.name == n })])
	}
	if b.Repeat < 1 || b.conns < 1 || b.duration <= 0 || b.memConns < 0 {
		log.Fatal("-repeat, -conns and -duration must be above zero, and -mem-conns not below")
	}
	harness.Main(b.run)
}

func (b *bench) run() error {
	cleanup, err := b.Setup("./deflate")
	if err != nil {
		return err
	}
	defer cleanup()
	log.Printf("building the load client and %d servers", len(b.servers))
	if err := b.Build("", "load", "./deflate/load"); err != nil {
		return err
	}
	if b.servers, b.buildFails, err = b.BuildServers(b.servers); err != nil {
		return err
	}

	res := results{echo: map[key][]echoResult{}, mem: map[key][]memResult{}, failures: map[string]int{}}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, o := range b.offers {
			for _, s := range b.servers {
				k := key{s, o.name}
				what := fmt.Sprintf("echo %d/%d %s %s", rep, b.Repeat, s, o.name)
				r, err := harness.Quietly(&b.Config, what, began, func() (echoResult, error) { return b.echo(s, o) })
				if err != nil {
					res.failures[s]++
					log.Printf("%s: %v", what, err)
					continue
				}
				res.echo[k] = append(res.echo[k], r)
				log.Printf("echo %d/%d %-8s %-17s: %7.0f msgs/s %6.2f µs/msg %6.0f B/msg down (%.2fx)  server %3.0f%% client %3.0f%% others %.2f cores",
					rep, b.Repeat, s, o.name, r.rate, r.cpuPerMsg, r.downPerMsg, r.ratio(), 100*r.Server, 100*r.Client, r.Other)
			}
		}
	}
	if b.memConns > 0 {
		for rep := 1; rep <= b.Repeat; rep++ {
			for _, o := range b.offers {
				for _, s := range b.servers {
					k := key{s, o.name}
					r, err := b.mem(s, o)
					if err != nil {
						res.failures[s]++
						log.Printf("memory %d/%d %s %s: %v", rep, b.Repeat, s, o.name, err)
						continue
					}
					res.mem[k] = append(res.mem[k], r)
					log.Printf("memory %d/%d %-8s %-17s: %6.2f KiB/conn (RSS %d KiB before, %d KiB with %d connections)",
						rep, b.Repeat, s, o.name, r.PerConn, r.BaseKiB, r.RSSKiB, b.memConns)
				}
			}
		}
	}
	return b.WriteReport(b.report(res, time.Since(began)))
}
