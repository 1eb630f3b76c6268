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
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

var allServers = []string{"herald", "gorilla", "gws", "coder", "gobwas", "gobwas-tuned"}

type bench struct {
	servers    []string
	sizes      []int
	conns      int
	depth      int
	idleConns  int
	warmup     time.Duration
	duration   time.Duration
	repeat     int
	serverCPU  string
	clientCPU  string
	quiet      float64
	quietWait  time.Duration
	baseline   string
	maxOther   float64
	retries    int
	budget     time.Duration
	clk        float64
	binDir     string
	buildFails map[string]string
}

func (b *bench) bin(name string) string { return filepath.Join(b.binDir, name) }

// splitServer splits a -servers entry, "NAME" or "NAME@ARG+ARG...", into the
// server's directory and the extra flags it is started with. The @ form
// compares variants of one server, e.g. "herald@-api=reader".
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
	var servers, sizes string
	flag.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to run, comma-separated; NAME@-flag=value+-flag2=value starts NAME with extra flags")
	flag.StringVar(&sizes, "sizes", "64,1024,16384", "echo message sizes in bytes, comma-separated (empty: no echo runs)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "measured window of each echo run")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "warm-up before each measured window")
	flag.IntVar(&b.repeat, "repeat", 3, "runs of each server and size (and of each idle measurement)")
	flag.IntVar(&b.conns, "conns", 32, "echo connections")
	flag.IntVar(&b.depth, "depth", 1, "echo messages in flight per connection")
	flag.IntVar(&b.idleConns, "idle-conns", 10000, "idle connections (0 skips the idle measurement)")
	flag.StringVar(&b.serverCPU, "server-cpu", "0", "taskset CPU list for the servers")
	flag.StringVar(&b.clientCPU, "client-cpu", "1", "taskset CPU list for the load client")
	flag.Float64Var(&b.quiet, "quiet", 0.2, "before each echo run, wait until other processes use fewer cores than this (0: do not wait)")
	flag.DurationVar(&b.quietWait, "quiet-wait", 5*time.Second, "the longest wait for -quiet")
	flag.Float64Var(&b.maxOther, "max-other", 0.25, "rerun an echo window in which other processes used more cores than this")
	flag.IntVar(&b.retries, "retries", 2, "reruns allowed per echo window for -max-other (the quietest run is kept)")
	flag.DurationVar(&b.budget, "budget", 12*time.Minute, "no more reruns once the echo runs have taken this long")
	flag.IntVar(&proc.Nice, "nice", 0, "run servers and client at this nice value (negative needs root; it takes CPU from everyone else on the machine)")
	flag.StringVar(&b.baseline, "baseline", "herald", "server the ratios are relative to")
	out := flag.String("out", "results/latest.md", "file the report is written to")
	flag.Parse()

	var err error
	if b.servers, err = parseServers(servers); err != nil {
		log.Fatal(err)
	}
	if b.sizes, err = parseSizes(sizes); err != nil {
		log.Fatal(err)
	}
	if b.repeat < 1 || b.conns < 1 || b.depth < 1 || b.duration <= 0 || b.idleConns < 0 {
		log.Fatal("-repeat, -conns, -depth and -duration must be above zero")
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
	if _, err := os.Stat("servers"); err != nil {
		return errors.New("run from bench/: go run ./cmd/bench")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found: install util-linux")
	}
	proc.RaiseNoFile()
	b.clk = proc.ClockTicks()

	proc.KillAllOnSignal() // whatever happens, children die with us

	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.binDir = dir
	if err := b.build(); err != nil {
		return err
	}

	echo := map[string]map[int][]echoResult{}
	idle := map[string][]idleResult{}
	failures := map[string]int{}
	began := time.Now()
	for rep := 1; rep <= b.repeat; rep++ {
		for _, size := range b.sizes {
			for _, s := range b.servers {
				if echo[s] == nil {
					echo[s] = map[int][]echoResult{}
				}
				r, err := b.echoQuiet(s, size, began)
				if err != nil {
					failures[s]++
					log.Printf("run %d/%d %s %dB: %v", rep, b.repeat, s, size, err)
					continue
				}
				echo[s][size] = append(echo[s][size], r)
				log.Printf("run %d/%d %-12s %5dB: %9.0f msgs/s %6.2f µs/msg  server %3.0f%% client %3.0f%% others %.2f cores",
					rep, b.repeat, s, size, r.rate, r.cpuPerMsg, 100*r.serverBusy, 100*r.clientBusy, r.other)
			}
		}
	}
	if b.idleConns > 0 {
		for rep := 1; rep <= b.repeat; rep++ {
			for _, s := range b.servers {
				r, err := b.idle(s)
				if err != nil {
					failures[s]++
					log.Printf("idle %d/%d %s: %v", rep, b.repeat, s, err)
					continue
				}
				idle[s] = append(idle[s], r)
				log.Printf("idle %d/%d %-12s: %6.2f KiB/conn (RSS %d KiB before, %d KiB with %d connections)",
					rep, b.repeat, s, r.perConn, r.baseKiB, r.rssKiB, b.idleConns)
			}
		}
	}
	report := b.report(echo, idle, failures, time.Since(began))
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
// build is left out of the run and named in the report; the load client
// must build.
func (b *bench) build() error {
	goBuild := func(name, pkg string) error {
		cmd := exec.Command("go", "build", "-o", b.bin(name), pkg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
	log.Printf("building the load client and %d servers", len(b.servers))
	if err := goBuild("load", "./cmd/load"); err != nil {
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
		dir, _ := splitServer(name)
		if _, err := os.Stat(filepath.Join("servers", dir, "main.go")); err != nil {
			return nil, fmt.Errorf("unknown server %q (have %s)", name, strings.Join(allServers, ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("-servers names none")
	}
	return out, nil
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
