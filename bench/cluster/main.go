// Command cluster runs the cross-node fan-out benchmark of issue 14: one publish on node A of
// herald's nes demo (examples/nes) reaching 1,000 and 10,000 subscribers spread over three
// nodes that share a broker, against the same publish with every subscriber on node A, per
// broker: NATS (an embedded nats-server, cluster/natsd) and Redis (Debian's redis-server on a
// free loopback port, no persistence). A node with no broker at all (herald as one process
// today) is measured too, as the reference.
//
// Run it from bench/:
//
//	go run ./cluster [-subs 1000,10000] [-repeat N] [-brokers none,nats,redis] [-hop=false]
//
// For every repeat, subscriber count and setup it starts a fresh broker and fresh nodes
// (taskset -c 0, the server core) and one load client (cluster/load, taskset -c 1) that
// opens the subscribers round-robin over the nodes and a publisher on the first node, then
// publishes one after another, each publish waiting for every delivery. It reports
// deliveries per second, the p50 and p99 of every delivery's latency (from just before the
// publish request is written until the client reads that subscriber's publication), each
// publish's time to its last subscriber, the servers' CPU per publish, and the ratio of the
// three-node p99 to the one-node p99 of the same broker. With -hop it also runs the brokers'
// own hop measurements (broker/redis TestHop, broker/nats BenchmarkHop: 64-byte messages at
// 10,000 a second from one node's Publish to another node's handler). See README.md.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

// allBrokers are the setups' brokers: none is one node with no broker (herald as one
// process), the reference.
var allBrokers = []string{"none", "nats", "redis"}

type bench struct {
	harness.Config
	brokers    []string
	subs       []int
	nodes      int
	pubs       int
	warmupPubs int
	hop        bool
	args       []string
}

// setup is what one run measures: a broker (or none) and how many nodes the subscribers are
// spread over; the publisher is always on the first.
type setup struct {
	broker string
	nodes  int
}

func (s setup) String() string { return fmt.Sprintf("%s/%d", s.broker, s.nodes) }

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{args: os.Args[1:]}
	var brokers, subs string
	flag.StringVar(&brokers, "brokers", strings.Join(allBrokers, ","), "setups, comma-separated: none (one node, no broker), nats, redis")
	flag.StringVar(&subs, "subs", "1000,10000", "subscriber connections, comma-separated: a fan-out is measured for each (at most 19,000: one load client holds them all)")
	flag.IntVar(&b.nodes, "nodes", 3, "nodes the subscribers are spread over in the cross-node runs")
	flag.IntVar(&b.Repeat, "repeat", 3, "runs of each setup and subscriber count, each with a fresh broker and fresh nodes")
	flag.IntVar(&b.pubs, "pubs", 100, "measured publishes per run")
	flag.IntVar(&b.warmupPubs, "warmup-pubs", 10, "publishes before the measured ones")
	flag.BoolVar(&b.hop, "hop", true, "also run the brokers' hop measurements (broker/redis TestHop, broker/nats BenchmarkHop)")
	b.Flags(20*time.Second, 20*time.Minute, "results/cluster.md")
	flag.Parse()

	var err error
	if b.brokers, err = harness.ParseList(brokers, allBrokers, false); err != nil {
		log.Fatalf("-brokers: %v", err)
	}
	var bad string
	if b.subs, bad = harness.ParseInts(subs, 1, 19000); bad != "" {
		log.Fatalf("-subs: bad count %q (1 to 19000: the open-files limit is about 19,900 per process)", bad)
	}
	if b.Repeat < 1 || b.nodes < 2 || b.pubs < 1 || b.warmupPubs < 0 {
		log.Fatal("-repeat and -pubs must be above zero, -nodes above one, -warmup-pubs not below zero")
	}
	harness.Main(b.run)
}

// setups lists the runs of one repeat and subscriber count.
func (b *bench) setups() []setup {
	var ss []setup
	for _, br := range b.brokers {
		ss = append(ss, setup{br, 1})
		if br != "none" {
			ss = append(ss, setup{br, b.nodes})
		}
	}
	return ss
}

func (b *bench) run() error {
	cleanup, err := b.Setup("./cluster")
	if err != nil {
		return err
	}
	defer cleanup()
	// Every node signs the fallback's tickets with the same key (the demo asks for one).
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	os.Setenv("HERALD_FALLBACK_KEY", base64.StdEncoding.EncodeToString(key))

	log.Printf("building the load client, natsd and herald's examples/nes")
	if err := b.Build("", "load", "./cluster/load"); err != nil {
		return err
	}
	if err := b.Build("", "natsd", "./cluster/natsd"); err != nil {
		return err
	}
	if err := b.Build("..", "herald", "./examples/nes"); err != nil {
		return err
	}

	res := map[int]map[setup][]result{}
	failures := map[string][]string{}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, n := range b.subs {
			if res[n] == nil {
				res[n] = map[setup][]result{}
			}
			for _, s := range b.setups() {
				what := fmt.Sprintf("%d subs %d/%d %s", n, rep, b.Repeat, s)
				r, err := harness.Quietly(&b.Config, what, began, func() (result, error) { return b.fanout(s, n) })
				if err != nil {
					failures[s.String()] = append(failures[s.String()], fmt.Sprintf("%s: %v", what, err))
					log.Printf("%s: %v", what, err)
					continue
				}
				res[n][s] = append(res[n][s], r)
				log.Printf("%-24s %9.0f deliveries/s  p50 %6.2f ms  p99 %6.2f ms  last %6.2f ms  %6.2f ms CPU/publish  servers %3.0f%% client %3.0f%% others %.2f cores",
					what, r.rate, r.p50, r.p99, r.last50, r.cpuPerPub, 100*r.Server, 100*r.Client, r.Other)
			}
		}
	}
	var hops []hopResult
	if b.hop {
		hops = b.hops()
	}
	if err := b.WriteReport(b.report(res, hops, failures, time.Since(began))); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("some runs failed: see the report")
	}
	return nil
}
