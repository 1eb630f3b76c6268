// Command broadcast runs the WebSocket broadcast benchmark: herald's websocket.Broadcaster
// side by side with lxzan/gws, gorilla/websocket, coder/websocket, gobwas/ws and
// lesismal/nbio, each in its own process (broadcast/servers/NAME), against one load client
// in another (broadcast/load) that holds -conns connections and times how long each
// broadcast takes to reach the last of them.
//
// Run it from bench/:
//
//	go run ./broadcast
//	go run ./broadcast -servers herald,gws -sizes 256 -repeat 5
//
// See README.md there for what the numbers mean.
package main

import (
	"flag"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/proc"
)

// floor is not a peer: the least a server can do (servers/floor), to read the others against.
const floor = "floor"

var allServers = []string{"herald", "gws", "gorilla", "coder", "gobwas", "nbio", floor}

type bench struct {
	harness.Config
	servers    []string
	sizes      []int
	conns      int
	pubs       int
	warmup     int
	baseline   string
	buildFails map[string]string
}

// result is one measured run: -pubs broadcasts to -conns connections.
type result struct {
	p50, p99     float64 // ms from a broadcast's send to its last delivery
	rate         float64 // deliveries per second: conns / p50
	cpuPerPub    float64 // server user+system ms per broadcast
	clientPerPub float64 // the load client's own ms per broadcast
	harness.Load
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{}
	var servers, sizes string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run, comma-separated; NAME@-flag=value+-flag2=value starts NAME with extra flags")
	flag.StringVar(&sizes, "sizes", "256,4096", "message sizes in bytes, comma-separated")
	flag.IntVar(&b.conns, "conns", 10000, "connections, the publisher included")
	flag.IntVar(&b.pubs, "pubs", 50, "measured broadcasts per run")
	flag.IntVar(&b.warmup, "warmup-pubs", 5, "unmeasured broadcasts before them")
	flag.IntVar(&b.Repeat, "repeat", 3, "runs of each server and size, each with a fresh server process")
	flag.StringVar(&b.baseline, "baseline", "herald", "server the ratios are relative to")
	b.Flags(30*time.Second, 20*time.Minute, "results/broadcast.md")
	flag.Parse()
	var err error
	if b.servers, err = harness.ParseList(servers, allServers, true); err != nil {
		log.Fatalf("-servers: %v", err)
	}
	var bad string
	if b.sizes, bad = harness.ParseInts(sizes, 8, 1<<20); bad != "" {
		log.Fatalf("-sizes: bad size %q (8 to 1048576 bytes)", bad)
	}
	if b.Repeat < 1 || b.conns < 2 || b.pubs < 1 || len(b.sizes) == 0 {
		log.Fatal("-repeat and -pubs must be above zero, -conns above one, -sizes not empty")
	}
	harness.Main(b.run)
}

func (b *bench) run() error {
	cleanup, err := b.Setup("./broadcast")
	if err != nil {
		return err
	}
	defer cleanup()
	log.Printf("building the load client and %d servers", len(b.servers))
	if err := b.Build("", "load", "./broadcast/load"); err != nil {
		return err
	}
	b.buildFails = map[string]string{}
	var ok []string
	for _, s := range b.servers {
		name, _ := harness.SplitServer(s)
		if err := b.Build("", name, "./broadcast/servers/"+name); err != nil {
			log.Printf("%s does not build; leaving it out: %v", s, err)
			b.buildFails[s] = strings.SplitN(err.Error(), "\n", 2)[0]
			continue
		}
		ok = append(ok, s)
	}
	if b.servers = ok; len(ok) == 0 {
		return fmt.Errorf("no server builds")
	}
	results := map[string]map[int][]result{}
	failures := map[string]int{}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, size := range b.sizes {
			for _, s := range b.servers {
				if results[s] == nil {
					results[s] = map[int][]result{}
				}
				what := fmt.Sprintf("run %d/%d %s %dB", rep, b.Repeat, s, size)
				r, err := harness.Quietly(&b.Config, what, began, func() (result, error) { return b.measure(s, size) })
				if err != nil {
					failures[s]++
					log.Printf("%s: %v", what, err)
					continue
				}
				results[s][size] = append(results[s][size], r)
				log.Printf("run %d/%d %-8s %5dB: p50 %7.2f ms p99 %7.2f ms %9.0f deliveries/s %7.2f ms CPU/broadcast  server %3.0f%% client %3.0f%% others %.2f cores",
					rep, b.Repeat, s, size, r.p50, r.p99, r.rate, r.cpuPerPub, 100*r.Server, 100*r.Client, r.Other)
			}
		}
	}
	return b.WriteReport(b.report(results, failures, time.Since(began)))
}

// measure runs -pubs broadcasts of size bytes on one fresh server process.
func (b *bench) measure(name string, size int) (result, error) {
	var r result
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	srv, err := b.StartBuilt(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := b.StartClient("-addr", srv.Addr, "-conns", fmt.Sprint(b.conns), "-size", fmt.Sprint(size),
		"-pubs", fmt.Sprint(b.pubs), "-warmup", fmt.Sprint(b.warmup))
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	p, err := b.Publishes(srv, cl, 60*time.Second)
	if err != nil {
		return r, err
	}
	r = result{
		p50:          harness.Quantile(p.Millis, 0.5),
		p99:          harness.Quantile(p.Millis, 0.99),
		cpuPerPub:    p.PerPub(p.ServerCPU),
		clientPerPub: p.PerPub(p.ClientCPU),
		Load:         p.Load(),
	}
	r.rate = float64(b.conns) / (r.p50 / 1e3)
	return r, nil
}
