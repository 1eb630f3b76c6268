package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

var (
	millis = harness.Fixed(2)
	rate   = func(r result) float64 { return r.rate }
	p50    = func(r result) float64 { return r.p50 }
	p99    = func(r result) float64 { return r.p99 }
	cpu    = func(r result) float64 { return r.cpuPerPub }
)

func (b *bench) report(results map[string]map[int][]result, failures map[string]int, took time.Duration) string {
	var w strings.Builder
	base := b.baseline
	if !slices.Contains(b.servers, base) {
		base = b.servers[0]
	}
	harness.Heading(&w, "herald broadcast benchmark", "go run ./broadcast", took)
	fmt.Fprintf(&w, "%s. Servers pinned to CPU %s, load client to CPU %s. "+
		"%d connections (the publisher included), one binary message broadcast at a time to all of them, "+
		"%d warm-up + %d measured broadcasts per run, a fresh server process per run. "+
		"Median of %d runs (min–max); ratio = the server's median ÷ %s's. "+
		"deliveries/s = connections ÷ the run's median time to the last connection.\n\n",
		harness.Machine(), b.ServerCPU, b.ClientCPU, b.conns, b.warmup, b.pubs, b.Repeat, base)
	anyNoisy := false
	for _, sz := range b.sizes {
		fmt.Fprintf(&w, "**%s**\n\n| server | deliveries/s | p50 ms to the last | p99 ms to the last | server CPU ms/broadcast |\n|---|--:|--:|--:|--:|\n", harness.SizeName(sz))
		for _, s := range b.servers {
			rs := results[s][sz]
			noisy := harness.Noisy(&b.Config, rs)
			anyNoisy = anyNoisy || noisy
			mark := func(st harness.Stat) harness.Stat { st.Noisy = noisy; return st }
			bs := results[base][sz]
			fmt.Fprintf(&w, "| %s | %s | %s | %s | %s |\n", s,
				harness.Cell(mark(harness.Pick(rs, rate)), harness.Rate, harness.Pick(bs, rate), s == base),
				harness.Cell(mark(harness.Pick(rs, p50)), millis, harness.Pick(bs, p50), s == base),
				harness.Cell(mark(harness.Pick(rs, p99)), millis, harness.Pick(bs, p99), s == base),
				harness.Cell(mark(harness.Pick(rs, cpu)), millis, harness.Pick(bs, cpu), s == base))
		}
		fmt.Fprintln(&w)
	}
	b.Notes(&w, anyNoisy, b.buildFails, b.servers, failures)
	if slices.Contains(b.servers, "herald") && len(b.servers) > 1 {
		fmt.Fprintf(&w, "\n**The bar** (herald against the fastest peer in this run: at least 1.5x its deliveries/s, p99 no worse):\n\n")
		for _, sz := range b.sizes {
			h := harness.Pick(results["herald"][sz], rate)
			hp := harness.Pick(results["herald"][sz], p99)
			fast, fastS := harness.Best(b.servers, func(s string) bool { return s == "herald" || s == floor },
				func(s string) harness.Stat { return harness.Pick(results[s][sz], rate) }, true)
			if h.N == 0 || fastS.N == 0 {
				continue
			}
			fp := harness.Pick(results[fast][sz], p99)
			fmt.Fprintf(&w, "- %s: herald %s deliveries/s vs %s %s, %.2fx (%s); p99 %s ms vs %s ms (%s)\n",
				harness.SizeName(sz), harness.Rate(h.Med), fast, harness.Rate(fastS.Med), h.Med/fastS.Med,
				harness.Verdict(h.Med >= 1.5*fastS.Med), millis(hp.Med), millis(fp.Med), harness.Verdict(hp.Med <= fp.Med))
			if fl := harness.Pick(results[floor][sz], rate); fl.N > 0 {
				fmt.Fprintf(&w, "  - against %s (write(2) to every connection and nothing else): herald %.2fx its deliveries/s; %s %.2fx; the bar asks herald for %.2fx of it\n",
					floor, h.Med/fl.Med, fast, fastS.Med/fl.Med, 1.5*fastS.Med/fl.Med)
			}
		}
	}
	harness.SizesBusyTable(&w, b.servers, b.sizes, func(s string, sz int) []harness.Load {
		return harness.Loads(results[s][sz])
	})
	return w.String()
}
