package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

// report renders the markdown report: the fan-out table, the bars and the hops.
func (b *bench) report(res map[int]map[setup][]result, hops []hopResult, failures map[string][]string, took time.Duration) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# Cross-node fan-out: herald's examples/nes on one node and on %d, per broker\n\n", b.nodes)
	fmt.Fprintf(&w, "`go run ./cluster %s` — %s; servers (nodes and broker) on cores %s, load client on %s; %d publishes (after %d warm-up) per run, %d run(s) each; took %v.\n\n",
		strings.Join(b.args, " "), harness.Machine(), b.ServerCPU, b.ClientCPU, b.pubs, b.warmupPubs, b.Repeat, took.Round(time.Second))
	fmt.Fprintf(&w, "Medians over the runs (range in brackets). p50 and p99 are over every delivery, publish → the client reads it; "+
		"to last is each publish's time to its last subscriber (median); ratio is p99 over the same broker's one-node p99; "+
		"CPU is the nodes' and the broker's user+system time per publish; load is server cores / client core / other processes, in %% of a core.\n\n")
	fmt.Fprintf(&w, "| broker | subscribers | nodes | deliveries/s | p50 ms | p99 ms | to last ms | p99 ratio | CPU ms/publish | load |\n")
	fmt.Fprintf(&w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	noisy := false
	for _, n := range b.subs {
		for _, s := range b.setups() {
			rs := res[n][s]
			if len(rs) == 0 {
				fmt.Fprintf(&w, "| %s | %d | %d | failed | | | | | | |\n", s.broker, n, s.nodes)
				continue
			}
			noisy = noisy || harness.Noisy(&b.Config, rs)
			ratio := "—"
			if s.nodes > 1 {
				if base := res[n][setup{s.broker, 1}]; len(base) > 0 {
					ratio = fmt.Sprintf("%.2fx", p99(rs).Med/p99(base).Med)
				}
			}
			fmt.Fprintf(&w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", s.broker, n, s.nodes,
				cell(harness.Pick(rs, func(r result) float64 { return r.rate }), harness.Rate),
				cell(harness.Pick(rs, func(r result) float64 { return r.p50 }), harness.Fixed(2)),
				cell(p99(rs), harness.Fixed(2)),
				cell(harness.Pick(rs, func(r result) float64 { return r.last50 }), harness.Fixed(2)),
				ratio,
				cell(harness.Pick(rs, func(r result) float64 { return r.cpuPerPub }), harness.Fixed(2)),
				harness.BusyCell(harness.Loads(rs)))
		}
	}
	if noisy {
		fmt.Fprintf(&w, "\nSome runs shared the machine with other processes using over %.2f cores even after reruns (the load column's third figure).\n", b.MaxOther)
	}

	fmt.Fprintf(&w, "\n## Bars\n\n")
	const barSubs = 1000
	for _, br := range b.brokers {
		if br == "none" {
			continue
		}
		one, many := res[barSubs][setup{br, 1}], res[barSubs][setup{br, b.nodes}]
		if len(one) == 0 || len(many) == 0 {
			fmt.Fprintf(&w, "- %s: cross-node p99 at most 2x single-node p99 at 1,000 subscribers: not measured\n", br)
			continue
		}
		r := p99(many).Med / p99(one).Med
		fmt.Fprintf(&w, "- %s: cross-node p99 at most 2x single-node p99 at 1,000 subscribers: %.2f ms / %.2f ms = %.2fx, %s",
			br, p99(many).Med, p99(one).Med, r, harness.Verdict(r <= 2))
		if none := res[barSubs][setup{"none", 1}]; len(none) > 0 {
			fmt.Fprintf(&w, " (against one node with no broker: %.2fx)", p99(many).Med/p99(none).Med)
		}
		fmt.Fprintln(&w)
	}
	for _, h := range hops {
		if h.err != nil {
			fmt.Fprintf(&w, "- %s: broker hop under 1 ms p99 on loopback: failed to measure (`%s`): %s\n", h.broker, h.command, firstLine(h.err))
			continue
		}
		fmt.Fprintf(&w, "- %s: broker hop under 1 ms p99 on loopback (64 B at 10,000/s, one node's Publish → another node's handler): p50 %v, p99 %v, %s (`%s`)\n",
			h.broker, h.p50, h.p99, harness.Verdict(h.p99 < time.Millisecond), h.command)
	}
	for s, fs := range failures {
		fmt.Fprintf(&w, "\n%s: %d run(s) failed:\n", s, len(fs))
		for _, f := range fs {
			fmt.Fprintf(&w, "- %s\n", firstLine(fmt.Errorf("%s", f)))
		}
	}
	return w.String()
}

// p99 summarizes the runs' p99s.
func p99(rs []result) harness.Stat { return harness.Pick(rs, func(r result) float64 { return r.p99 }) }

// cell renders "median (min–max)".
func cell(s harness.Stat, format func(float64) string) string {
	c := format(s.Med)
	if s.N > 1 {
		c += " (" + format(s.Lo) + "–" + format(s.Hi) + ")"
	}
	return c
}

// firstLine returns err's first line.
func firstLine(err error) string {
	l, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	return l
}
