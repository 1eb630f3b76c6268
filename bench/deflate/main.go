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

	"github.com/herald-go/herald/bench/internal/proc"
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
	servers    []string
	offers     []offer
	conns      int
	memConns   int
	warmup     time.Duration
	duration   time.Duration
	repeat     int
	serverCPU  string
	clientCPU  string
	quiet      float64
	quietWait  time.Duration
	maxOther   float64
	retries    int
	budget     time.Duration
	clk        float64
	binDir     string
	buildFails map[string]string
}

func (b *bench) bin(name string) string { return filepath.Join(b.binDir, name) }

// splitServer splits a -servers entry, "NAME" or "NAME@ARG+ARG...", into the
// server's directory and the extra flags it is started with.
func splitServer(s string) (name string, args []string) {
	name, rest, ok := strings.Cut(s, "@")
	if ok && rest != "" {
		args = strings.Split(rest, "+")
	}
	return name, args
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{buildFails: map[string]string{}}
	var servers, offerNames string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run, comma-separated; NAME@-flag=value+-flag2=value starts NAME with extra flags")
	flag.StringVar(&offerNames, "offers", "client-no-context,browser", "offers to run: client-no-context (permessage-deflate; client_no_context_takeover), browser (permessage-deflate; client_max_window_bits)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "measured window of each echo run")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "warm-up before each measured window")
	flag.IntVar(&b.repeat, "repeat", 3, "runs of each server and offer (echo and memory)")
	flag.IntVar(&b.conns, "conns", 32, "echo connections (one message in flight each)")
	flag.IntVar(&b.memConns, "mem-conns", 1000, "connections for the memory measurement (0 skips it)")
	flag.StringVar(&b.serverCPU, "server-cpu", "0", "taskset CPU list for the servers")
	flag.StringVar(&b.clientCPU, "client-cpu", "1", "taskset CPU list for the load client")
	flag.Float64Var(&b.quiet, "quiet", 0.2, "before each echo run, wait until other processes use fewer cores than this (0: do not wait)")
	flag.DurationVar(&b.quietWait, "quiet-wait", 5*time.Second, "the longest wait for -quiet")
	flag.Float64Var(&b.maxOther, "max-other", 0.25, "rerun an echo window in which other processes used more cores than this")
	flag.IntVar(&b.retries, "retries", 2, "reruns allowed per echo window for -max-other (the quietest run is kept)")
	flag.DurationVar(&b.budget, "budget", 10*time.Minute, "no more reruns once the echo runs have taken this long")
	out := flag.String("out", "results/deflate.md", "file the report is written to")
	flag.Parse()

	var err error
	if b.servers, err = parseServers(servers); err != nil {
		log.Fatal(err)
	}
	if b.offers, err = parseOffers(offerNames); err != nil {
		log.Fatal(err)
	}
	if b.repeat < 1 || b.conns < 1 || b.duration <= 0 || b.memConns < 0 {
		log.Fatal("-repeat, -conns and -duration must be above zero")
	}
	code := 0
	if err := b.run(*out); err != nil {
		log.Print(err)
		code = 1
	}
	proc.KillAll()
	os.Exit(code)
}

func (b *bench) run(out string) error {
	if _, err := os.Stat("deflate"); err != nil {
		return errors.New("run from bench/: go run ./deflate")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found: install util-linux")
	}
	proc.RaiseNoFile()
	b.clk = proc.ClockTicks()

	proc.KillAllOnSignal() // whatever happens, children die with us

	dir, err := os.MkdirTemp("", "herald-deflate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.binDir = dir
	if err := b.build(); err != nil {
		return err
	}

	res := results{echo: map[key][]echoResult{}, mem: map[key][]memResult{}, failures: map[string]int{}}
	began := time.Now()
	for rep := 1; rep <= b.repeat; rep++ {
		for _, o := range b.offers {
			for _, s := range b.servers {
				k := key{s, o.name}
				r, err := b.echoQuiet(s, o, began)
				if err != nil {
					res.failures[s]++
					log.Printf("echo %d/%d %s %s: %v", rep, b.repeat, s, o.name, err)
					continue
				}
				res.echo[k] = append(res.echo[k], r)
				log.Printf("echo %d/%d %-8s %-17s: %7.0f msgs/s %6.2f µs/msg %6.0f B/msg down (%.2fx)  server %3.0f%% client %3.0f%% others %.2f cores",
					rep, b.repeat, s, o.name, r.rate, r.cpuPerMsg, r.downPerMsg, r.ratio(), 100*r.serverBusy, 100*r.clientBusy, r.other)
			}
		}
	}
	if b.memConns > 0 {
		for rep := 1; rep <= b.repeat; rep++ {
			for _, o := range b.offers {
				for _, s := range b.servers {
					k := key{s, o.name}
					r, err := b.mem(s, o)
					if err != nil {
						res.failures[s]++
						log.Printf("memory %d/%d %s %s: %v", rep, b.repeat, s, o.name, err)
						continue
					}
					res.mem[k] = append(res.mem[k], r)
					log.Printf("memory %d/%d %-8s %-17s: %6.2f KiB/conn (RSS %d KiB before, %d KiB with %d connections)",
						rep, b.repeat, s, o.name, r.perConn, r.baseKiB, r.rssKiB, b.memConns)
				}
			}
		}
	}
	report := b.report(res, time.Since(began))
	fmt.Print(report)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s", out)
	return nil
}

// build compiles the load client and every server. A server that does not
// build is left out of the run and named in the report.
func (b *bench) build() error {
	goBuild := func(name, pkg string) error {
		out, err := exec.Command("go", "build", "-o", b.bin(name), pkg).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
	log.Printf("building the load client and %d servers", len(b.servers))
	if err := goBuild("load", "./deflate/load"); err != nil {
		return fmt.Errorf("building the load client: %w", err)
	}
	var ok []string
	built := map[string]error{}
	for _, s := range b.servers {
		name, _ := splitServer(s)
		err, done := built[name]
		if !done {
			err = goBuild(name, "./servers/"+name)
			built[name] = err
		}
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
			log.Printf("%s does not build; leaving it out: %v", s, err)
			b.buildFails[s] = first
			continue
		}
		ok = append(ok, s)
	}
	if len(ok) == 0 {
		return errors.New("no server builds")
	}
	b.servers = ok
	return nil
}

func parseServers(s string) ([]string, error) {
	var out []string
	for name := range strings.FieldsSeq(strings.ReplaceAll(s, ",", " ")) {
		if dir, _ := splitServer(name); !slices.Contains(allServers, dir) {
			return nil, fmt.Errorf("unknown server %q (have %s)", name, strings.Join(allServers, ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("-servers names none")
	}
	return out, nil
}

func parseOffers(s string) ([]offer, error) {
	var out []offer
next:
	for name := range strings.FieldsSeq(strings.ReplaceAll(s, ",", " ")) {
		for _, o := range offers {
			if o.name == name {
				out = append(out, o)
				continue next
			}
		}
		return nil, fmt.Errorf("unknown offer %q (have client-no-context, browser)", name)
	}
	if len(out) == 0 {
		return nil, errors.New("-offers names none")
	}
	return out, nil
}
