// Command idle measures what an idle WebSocket connection costs a server, and what herald's
// idle mode costs in CPU when the connections are busy, in one run:
//
//	cd bench && go run ./idle                          # 3 repeats, 10,000 idle connections
//	go run ./idle -impls herald-idle,nbio-std -repeat 1 -echo-duration 2s
//
// For each server form (see idle/server and idle/nbio: herald's idle mode, herald's goroutine mode, herald's
// Read loop, nbio on net/http moved onto its poller, nbio's own HTTP server, herald's
// EventSource streams and herald's nes sockets with and without idle mode), each repeat
// starts a fresh server process and measures:
//
//   - idle KiB/conn: the server's RSS before and after the load client (cmd/load -mode idle)
//     opened -conns connections and the RSS settled, divided by -conns (harness.Idle: Go heap,
//     uncollected garbage and stacks included, kernel socket buffers not); event streams are
//     opened by idle/sseload instead, which reads each response head and then holds the stream,
//     and nes sockets by idle/nesload, which says hello on each and answers heartbeats;
//   - echo CPU µs/msg: a fresh process again, -echo-conns connections echoing -size bytes, one
//     message in flight each, for -echo-duration; the server's user+system CPU over the window
//     divided by the messages (as cmd/bench measures it).
//
// Servers are pinned to CPU 0 and the client to CPU 1 (-server-cpu, -client-cpu), as in
// cmd/bench. The report goes to stdout and to -out.
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

var allImpls = []string{"herald-idle", "herald-goroutine", "herald-read", "nbio-std", "nbio-engine", "sse-idle", "sse-goroutine", "nes-idle", "nes-goroutine"}

// sse reports whether impl serves event streams (idle memory only, with idle/sseload).
func sse(impl string) bool { return strings.HasPrefix(impl, "sse-") }

// nes reports whether impl is a nes server (idle memory only, with idle/nesload).
func nes(impl string) bool { return strings.HasPrefix(impl, "nes-") }

type bench struct {
	harness.Config
	impls     []string
	conns     int
	echoConns int
	size      int
	duration  time.Duration
	warmup    time.Duration
}

func main() {
	log.SetFlags(log.Ltime)
	b := &bench{}
	var impls string
	flag.StringVar(&impls, "impls", strings.Join(allImpls, ","), "server forms to measure, comma-separated")
	flag.IntVar(&b.Repeat, "repeat", 3, "fresh server processes per form and measurement")
	flag.IntVar(&b.conns, "conns", 10000, "idle connections")
	flag.IntVar(&b.echoConns, "echo-conns", 32, "echo connections (0 skips the echo runs)")
	flag.IntVar(&b.size, "size", 1024, "echo message size in bytes")
	flag.DurationVar(&b.duration, "echo-duration", 3*time.Second, "measured echo window")
	flag.DurationVar(&b.warmup, "warmup", time.Second, "warm-up before each echo window")
	b.Flags(5*time.Second, 6*time.Minute, "results/idle.md")
	flag.Parse()
	var err error
	if b.impls, err = harness.ParseList(impls, allImpls, false); err != nil {
		log.Fatalf("-impls: %v", err)
	}
	if b.Repeat < 1 || b.conns < 1 || b.echoConns < 0 || b.size < 8 {
		log.Fatal("-repeat and -conns must be above zero, -size at least 8")
	}
	harness.Main(b.run)
}

type echoResult struct {
	rate, cpuPerMsg float64
	harness.Load
}

func (b *bench) run() error {
	cleanup, err := b.Setup("./idle")
	if err != nil {
		return err
	}
	defer cleanup()
	log.Print("building the load client and the server")
	if err := b.Build("", "load", "./cmd/load"); err != nil {
		return err
	}
	if err := b.Build("", "server", "./idle/server"); err != nil {
		return err
	}
	if err := b.Build("", "nbio", "./idle/nbio"); err != nil {
		return err
	}
	if err := b.Build("", "sseload", "./idle/sseload"); err != nil {
		return err
	}
	if err := b.Build("", "nesload", "./idle/nesload"); err != nil {
		return err
	}
	idle := map[string][]harness.IdleResult{}
	echo := map[string][]echoResult{}
	failures := map[string]int{}
	began := time.Now()
	for rep := 1; rep <= b.Repeat; rep++ {
		for _, impl := range b.impls {
			what := fmt.Sprintf("run %d/%d %s", rep, b.Repeat, impl)
			r, err := b.idle(impl)
			if err != nil {
				failures[impl]++
				log.Printf("%s idle: %v", what, err)
			} else {
				idle[impl] = append(idle[impl], r)
				log.Printf("%s idle: %.2f KiB/conn", what, r.PerConn)
			}
			if b.echoConns == 0 || sse(impl) || nes(impl) {
				continue
			}
			e, err := harness.Quietly(&b.Config, what, began, func() (echoResult, error) { return b.echo(impl) })
			if err != nil {
				failures[impl]++
				log.Printf("%s echo: %v", what, err)
				continue
			}
			echo[impl] = append(echo[impl], e)
			log.Printf("%s echo: %s msgs/s, %.2f µs/msg", what, harness.Rate(e.rate), e.cpuPerMsg)
		}
	}
	return b.WriteReport(b.report(idle, echo, failures, time.Since(began)))
}

func (b *bench) start(impl string) (*harness.Server, error) {
	bin := "server"
	if strings.HasPrefix(impl, "nbio-") {
		bin = "nbio"
	}
	return b.StartServer(impl, b.Bin(bin), "-impl", impl, "-addr", "127.0.0.1:0")
}

func (b *bench) idle(impl string) (harness.IdleResult, error) {
	srv, err := b.start(impl)
	if err != nil {
		return harness.IdleResult{}, err
	}
	defer srv.Kill()
	return b.Idle(srv, b.conns, func() (*proc.Proc, error) {
		if sse(impl) {
			return proc.Start("sseload", b.ClientCPU, b.Bin("sseload"), "-addr", srv.Addr, "-conns", fmt.Sprint(b.conns))
		}
		if nes(impl) {
			return proc.Start("nesload", b.ClientCPU, b.Bin("nesload"), "-addr", srv.Addr, "-conns", fmt.Sprint(b.conns))
		}
		return b.StartClient("-mode", "idle", "-addr", srv.Addr, "-conns", fmt.Sprint(b.conns), "-hold", "5m")
	})
}

func (b *bench) echo(impl string) (echoResult, error) {
	var r echoResult
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	srv, err := b.start(impl)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	e, err := b.RunEcho(srv, b.echoConns, b.size, 1, b.warmup, b.duration)
	if err != nil {
		return r, err
	}
	return echoResult{rate: e.Rate(), cpuPerMsg: e.ServerPerMsg(), Load: e.Load()}, nil
}

func (b *bench) report(idle map[string][]harness.IdleResult, echo map[string][]echoResult, failures map[string]int, took time.Duration) string {
	var sb strings.Builder
	// The command as run: a heading rebuilt from some of the flags left out -impls, -warmup,
	// -retries and the rest.
	harness.Heading(&sb, "Idle connections: what each costs a server, and what idle mode costs in CPU", "go run ./idle", took)
	fmt.Fprintf(&sb, "Idle: %d connections; echo: %d connections of %d B messages, one in flight each, %v warm-up + %v measured.\n\n",
		b.conns, b.echoConns, b.size, b.warmup, b.duration)
	fmt.Fprintf(&sb, "%s. Servers pinned to CPU %s, load client to CPU %s. Median of %d runs (min–max); ratio = the form's median ÷ herald-goroutine's.\n\n",
		harness.Machine(), b.ServerCPU, b.ClientCPU, b.Repeat)
	base := "herald-goroutine"
	idleStat := func(s string) harness.Stat {
		return harness.Pick(idle[s], func(r harness.IdleResult) float64 { return r.PerConn })
	}
	cpuStat := func(s string) harness.Stat {
		st := harness.Pick(echo[s], func(r echoResult) float64 { return r.cpuPerMsg })
		st.Noisy = harness.Noisy(&b.Config, echo[s])
		return st
	}
	rateStat := func(s string) harness.Stat {
		st := harness.Pick(echo[s], func(r echoResult) float64 { return r.rate })
		st.Noisy = harness.Noisy(&b.Config, echo[s])
		return st
	}
	fmt.Fprintf(&sb, "| server | idle KiB/conn (%d conns) | %d B echo msgs/s | %d B echo CPU µs/msg |\n|---|--:|--:|--:|\n", b.conns, b.size, b.size)
	for _, s := range b.impls {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", s,
			harness.Cell(idleStat(s), harness.Fixed(2), idleStat(base), s == base),
			harness.Cell(rateStat(s), harness.Rate, rateStat(base), s == base),
			harness.Cell(cpuStat(s), harness.Fixed(2), cpuStat(base), s == base))
	}
	if len(idle["herald-idle"]) > 0 {
		kib := idleStat("herald-idle").Med
		fmt.Fprintf(&sb, "\nBar (issue 17): herald-idle at most 2.5 KiB per idle connection: %.2f KiB, %s.\n", kib, harness.Verdict(kib <= 2.5))
	}
	if len(echo["herald-idle"]) > 0 && len(echo[base]) > 0 {
		ratio := cpuStat("herald-idle").Med / cpuStat(base).Med
		fmt.Fprintf(&sb, "Bar: herald-idle echo CPU per message within 10%% of goroutine mode: %.2fx, %s.\n", ratio, harness.Verdict(ratio <= 1.10))
	}
	if len(echo) > 0 {
		harness.BusyTable(&sb, b.impls, []string{"echo"}, func(s string, _ int) []harness.Load { return harness.Loads(echo[s]) })
	}
	anyNoisy := false
	for _, s := range b.impls {
		anyNoisy = anyNoisy || harness.Noisy(&b.Config, echo[s])
	}
	b.Notes(&sb, anyNoisy, nil, b.impls, failures)
	return sb.String()
}
