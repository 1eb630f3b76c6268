package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

var (
	micros  = harness.Fixed(2)
	kib     = harness.Fixed(1)
	perSec  = func(r echoResult) float64 { return r.rate }
	perMsg  = func(r echoResult) float64 { return r.cpuPerMsg }
	perConn = func(r harness.IdleResult) float64 { return r.PerConn }
)

func (b *bench) report(echo map[string]map[int][]echoResult, idle map[string][]harness.IdleResult, failures map[string]int, took time.Duration) string {
	var w strings.Builder
	base := b.baseline
	if !slices.Contains(b.servers, base) {
		base = b.servers[0]
	}
	harness.Heading(&w, "herald echo benchmark", "go run ./cmd/bench", took)
	fmt.Fprintf(&w, "%s. Servers pinned to CPU %s, load client to CPU %s. "+
		"Echo: %d connections, %d message(s) in flight each, binary messages, %v warm-up + %v measured, "+
		"a fresh server process per run; idle: %d connections. Median of %d runs (min–max); "+
		"ratio = the server's median ÷ %s's, so above 1x is more msgs/s, more CPU or more memory than %s.\n\n",
		harness.Machine(), b.ServerCPU, b.ClientCPU,
		b.conns, b.depth, b.warmup, b.duration, b.idleConns, b.Repeat, base, base)

	// The table.
	fmt.Fprintf(&w, "| server |")
	for _, sz := range b.sizes {
		fmt.Fprintf(&w, " %s msgs/s | %s CPU µs/msg |", harness.SizeName(sz), harness.SizeName(sz))
	}
	if b.idleConns > 0 {
		fmt.Fprintf(&w, " idle KiB/conn |")
	}
	fmt.Fprintf(&w, "\n|---|")
	for range b.sizes {
		fmt.Fprintf(&w, "--:|--:|")
	}
	if b.idleConns > 0 {
		fmt.Fprintf(&w, "--:|")
	}
	fmt.Fprintln(&w)
	anyNoisy := false
	for _, s := range b.servers {
		fmt.Fprintf(&w, "| %s |", s)
		for _, sz := range b.sizes {
			rs := echo[s][sz]
			noisy := harness.Noisy(&b.Config, rs)
			anyNoisy = anyNoisy || noisy
			mark := func(s harness.Stat) harness.Stat { s.Noisy = noisy; return s }
			fmt.Fprintf(&w, " %s | %s |",
				harness.Cell(mark(harness.Pick(rs, perSec)), harness.Rate, harness.Pick(echo[base][sz], perSec), s == base),
				harness.Cell(mark(harness.Pick(rs, perMsg)), micros, harness.Pick(echo[base][sz], perMsg), s == base))
		}
		if b.idleConns > 0 {
			fmt.Fprintf(&w, " %s |", harness.Cell(harness.Pick(idle[s], perConn), kib, harness.Pick(idle[base], perConn), s == base))
		}
		fmt.Fprintln(&w)
	}
	b.Notes(&w, anyNoisy, b.buildFails, b.servers, failures)

	if slices.Contains(b.servers, "herald") && len(b.servers) > 1 {
		b.bar(&w, echo, idle)
	}
	if len(b.sizes) > 0 {
		harness.SizesBusyTable(&w, b.servers, b.sizes, func(s string, sz int) []harness.Load {
			return harness.Loads(echo[s][sz])
		})
	}
	return w.String()
}

// bar judges herald against the peers: msgs/s at least the fastest's, CPU per
// message at most the cheapest's, idle memory at most the leanest's.
func (b *bench) bar(w *strings.Builder, echo map[string]map[int][]echoResult, idle map[string][]harness.IdleResult) {
	fmt.Fprintf(w, "\n**The bar** (herald against the best peer in this run):\n\n")
	for _, sz := range b.sizes {
		h := harness.Pick(echo["herald"][sz], perSec)
		hc := harness.Pick(echo["herald"][sz], perMsg)
		fast, fastS := harness.Best(b.servers, isHerald, func(s string) harness.Stat { return harness.Pick(echo[s][sz], perSec) }, true)
		cheap, cheapS := harness.Best(b.servers, isHerald, func(s string) harness.Stat { return harness.Pick(echo[s][sz], perMsg) }, false)
		if h.N == 0 || fastS.N == 0 {
			continue
		}
		fmt.Fprintf(w, "- %s: herald %s msgs/s vs fastest peer %s %s (%s); CPU %s µs/msg vs cheapest peer %s %s (%s)\n",
			harness.SizeName(sz), harness.Rate(h.Med), fast, harness.Rate(fastS.Med), harness.Verdict(h.Med >= fastS.Med),
			micros(hc.Med), cheap, micros(cheapS.Med), harness.Verdict(hc.Med <= cheapS.Med))
	}
	if h := harness.Pick(idle["herald"], perConn); h.N > 0 {
		lean, leanS := harness.Best(b.servers, isHerald, func(s string) harness.Stat { return harness.Pick(idle[s], perConn) }, false)
		if leanS.N > 0 {
			fmt.Fprintf(w, "- idle: herald %s KiB/conn vs leanest peer %s %s (%s)\n",
				kib(h.Med), lean, kib(leanS.Med), harness.Verdict(h.Med <= leanS.Med))
		}
	}
}

// isHerald tells herald and its variants (herald@...) from the peers.
func isHerald(s string) bool { return harness.Named(s, "herald") }
