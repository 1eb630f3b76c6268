// Command bench runs the echo benchmark: herald's WebSocket server side by
// side with gorilla/websocket, lxzan/gws, coder/websocket and gobwas/ws, each
// in its own process, against one load client in another process.
//
// Run it from bench/:
//
//	go run ./cmd/bench
//
// It builds the servers and the load client, then for every repeat, size and
// server starts a fresh server pinned to one core (taskset -c 0) and the
// load client pinned to the other (taskset -c 1), warms up, and measures a
// fixed window: messages per second, and the server's user+system CPU time
// (from /proc/PID/stat) per message. Then it opens -idle-conns idle
// connections to each server and reads how much its RSS grew per
// connection. It prints one markdown table of medians, spreads and ratios to
// herald, and writes it to results/latest.md. See README.md.
package main

import (
	"flag"
	"fmt"
	"log"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

var allServers = []string{"herald", "gorilla", "gws", "coder", "gobwas", "gobwas-tuned"}

type bench struct {
	harness.Config
	servers    []string
	sizes      []int
	conns      int
	depth      int
	idleConns  int
	warmup     time.Duration
	duration   time.Duration
	baseline   string
	buildFails map[string]string
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{}
	var servers, sizes string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run, comma-separated; NAME@-flag=value+-flag2=value starts NAME with extra flags")
	flag.StringVar(&sizes, "sizes", "64,1024,16384", "echo message sizes in bytes, comma-separated (empty: no echo runs)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "measured window of each echo run")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "warm-up before each measured window")
	flag.IntVar(&b.Repeat, "repeat", 3, "runs of each server and size (and of each idle measurement)")
	flag.IntVar(&b.conns, "conns", 32, "echo connections")
	flag.IntVar(&b.depth, "depth", 1, "echo messages in flight per connection")
	flag.IntVar(&b.idleConns, "idle-conns", 10000, "idle connections (0 skips the idle measurement)")
	flag.StringVar(&b.baseline, "baseline", "herald", "server the ratios are relative to")
	b.Flags(5*time.Second, 12*time.Minute, "results/latest.md")
	flag.Parse()

	var err error
	if b.servers, err = harness.ParseList(servers, allServers, true); err != nil {
		log.Fatalf("-servers: %v", err)
	}
	if b.sizes, err = parseSizes(sizes); err != nil {
		log.Fatal(err)
	}
	if b.Repeat < 1 || b.conns < 1 || b.depth < 1 || b.duration <= 0 || b.idleConns < 0 {
		log.Fatal("-repeat, -conns, -depth and -duration must be above zero, and -idle-conns not below")
	}
	harness.Main(b.run)
}

func (b *bench) run() error {
	cleanup, err := b.Setup("./cmd/bench")
	if err != nil {
		return err
	}
	defer cleanup()
	log.Printf("building the load client and %d servers", len(b.servers))
	if err := b.Build("", "load", "./cmd/load"); err != nil {
		return err
	}
	if b.servers, b.buildFails, err = b.BuildServers(b.servers); err != nil {
		return err
	}

	echo := map[string]map[int][]echoResult{}
	idle := map[string][]harness.IdleResult{}
	failures := map[string]int{}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, size := range b.sizes {
			for _, s := range b.servers {
				if echo[s] == nil {
					echo[s] = map[int][]echoResult{}
				}
				what := fmt.Sprintf("run %d/%d %s %dB", rep, b.Repeat, s, size)
				r, err := harness.Quietly(&b.Config, what, began, func() (echoResult, error) { return b.echo(s, size) })
				if err != nil {
					failures[s]++
					log.Printf("%s: %v", what, err)
					continue
				}
				echo[s][size] = append(echo[s][size], r)
				log.Printf("run %d/%d %-12s %5dB: %9.0f msgs/s %6.2f µs/msg  server %3.0f%% client %3.0f%% others %.2f cores",
					rep, b.Repeat, s, size, r.rate, r.cpuPerMsg, 100*r.Server, 100*r.Client, r.Other)
			}
		}
	}
	if b.idleConns > 0 {
		for rep := 1; rep <= b.Repeat; rep++ {
			for _, s := range b.servers {
				r, err := b.idle(s)
				if err != nil {
					failures[s]++
					log.Printf("idle %d/%d %s: %v", rep, b.Repeat, s, err)
					continue
				}
				idle[s] = append(idle[s], r)
				log.Printf("idle %d/%d %-12s: %6.2f KiB/conn (RSS %d KiB before, %d KiB with %d connections)",
					rep, b.Repeat, s, r.PerConn, r.BaseKiB, r.RSSKiB, b.idleConns)
			}
		}
	}
	return b.WriteReport(b.report(echo, idle, failures, time.Since(began)))
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1<<20 {
			return nil, fmt.Errorf("bad size %q: want bytes, 1 to 1048576", f)
		}
		out = append(out, n)
	}
	return out, nil
}
