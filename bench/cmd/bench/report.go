package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// stat is the median of some samples and their range.
type stat struct {
	med, lo, hi float64
	n           int
	noisy       int // samples taken while other processes were busy
}

func summarize(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: m, lo: s[0], hi: s[len(s)-1], n: len(s)}
}

func pick[T any](rs []T, f func(T) float64) stat {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return summarize(xs)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func micros(v float64) string { return fmt.Sprintf("%.2f", v) }

func kib(v float64) string { return fmt.Sprintf("%.1f", v) }

// cell renders "median (min–max) ratio", the ratio being this median over
// the baseline's.
func cell(s stat, format func(float64) string, base stat, isBase bool) string {
	if s.n == 0 {
		return "—"
	}
	c := format(s.med)
	if s.noisy > 0 {
		c += "†"
	}
	if s.n > 1 {
		c += " (" + format(s.lo) + "–" + format(s.hi) + ")"
	}
	switch {
	case isBase:
		c += " 1x"
	case base.n > 0 && base.med > 0:
		c += fmt.Sprintf(" %.2fx", s.med/base.med)
	}
	return c
}

func (b *bench) report(echo map[string]map[int][]echoResult, idle map[string][]idleResult, failures map[string]int, took time.Duration) string {
	var w strings.Builder
	base := b.baseline
	if !slices.Contains(b.servers, base) {
		base = b.servers[0]
	}
	fmt.Fprintf(&w, "# herald echo benchmark\n\n")
	fmt.Fprintf(&w, "%s, `%s` (%s measured, plus builds).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(append([]string{"go run ./cmd/bench"}, os.Args[1:]...), " "), took.Round(time.Second))
	fmt.Fprintf(&w, "%s, %s, %d cores (%s); %s. Servers pinned to CPU %s, load client to CPU %s. "+
		"Echo: %d connections, %d message(s) in flight each, binary messages, %v warm-up + %v measured, "+
		"a fresh server process per run; idle: %d connections. Median of %d runs (min–max); "+
		"ratio = the server's median ÷ %s's, so above 1x is more msgs/s, more CPU or more memory than %s.\n\n",
		proc.GoVersion(), runtime.GOARCH, runtime.NumCPU(), proc.CPUModel(), proc.Kernel(), b.serverCPU, b.clientCPU,
		b.conns, b.depth, b.warmup, b.duration, b.idleConns, b.repeat, base, base)

	// The table.
	fmt.Fprintf(&w, "| server |")
	for _, sz := range b.sizes {
		fmt.Fprintf(&w, " %s msgs/s | %s CPU µs/msg |", sizeName(sz), sizeName(sz))
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
	noisy := func(rs []echoResult) (n int) {
		for _, r := range rs {
			if r.other > b.maxOther {
				n++
			}
		}
		return n
	}
	mark := func(s stat, rs []echoResult) stat { s.noisy = noisy(rs); return s }
	anyNoisy := false
	perMsg := func(r echoResult) float64 { return r.cpuPerMsg }
	perSec := func(r echoResult) float64 { return r.rate }
	perConn := func(r idleResult) float64 { return r.perConn }
	for _, s := range b.servers {
		fmt.Fprintf(&w, "| %s |", s)
		for _, sz := range b.sizes {
			rs := echo[s][sz]
			anyNoisy = anyNoisy || noisy(rs) > 0
			fmt.Fprintf(&w, " %s | %s |",
				cell(mark(pick(rs, perSec), rs), rate, pick(echo[base][sz], perSec), s == base),
				cell(mark(pick(rs, perMsg), rs), micros, pick(echo[base][sz], perMsg), s == base))
		}
		if b.idleConns > 0 {
			fmt.Fprintf(&w, " %s |", cell(pick(idle[s], perConn), kib, pick(idle[base], perConn), s == base))
		}
		fmt.Fprintln(&w)
	}
	if anyNoisy {
		fmt.Fprintf(&w, "\n† some of these runs shared the machine with other processes using over %.2f cores "+
			"even after reruns (see the load table below); they inflate CPU per message and lower msgs/s.\n", b.maxOther)
	}
	for s, why := range b.buildFails {
		fmt.Fprintf(&w, "\n%s did not build and was left out: %s\n", s, why)
	}
	for _, s := range b.servers {
		if n := failures[s]; n > 0 {
			fmt.Fprintf(&w, "\n%s: %d run(s) failed (see the log); its cells have fewer samples.\n", s, n)
		}
	}

	// The bar, judged against the peers.
	if slices.Contains(b.servers, "herald") && len(b.servers) > 1 {
		fmt.Fprintf(&w, "\n**The bar** (herald against the best peer in this run):\n\n")
		for _, sz := range b.sizes {
			h := pick(echo["herald"][sz], perSec)
			hc := pick(echo["herald"][sz], perMsg)
			fast, fastS := "", stat{}
			cheap, cheapS := "", stat{}
			for _, s := range b.servers {
				if isHerald(s) {
					continue
				}
				if r := pick(echo[s][sz], perSec); r.n > 0 && r.med > fastS.med {
					fast, fastS = s, r
				}
				if c := pick(echo[s][sz], perMsg); c.n > 0 && (cheapS.n == 0 || c.med < cheapS.med) {
					cheap, cheapS = s, c
				}
			}
			if h.n == 0 || fastS.n == 0 {
				continue
			}
			fmt.Fprintf(&w, "- %s: herald %s msgs/s vs fastest peer %s %s (%s); CPU %s µs/msg vs cheapest peer %s %s (%s)\n",
				sizeName(sz), rate(h.med), fast, rate(fastS.med), verdict(h.med >= fastS.med),
				micros(hc.med), cheap, micros(cheapS.med), verdict(hc.med <= cheapS.med))
		}
		if h := pick(idle["herald"], perConn); h.n > 0 {
			lean, leanS := "", stat{}
			for _, s := range b.servers {
				if c := pick(idle[s], perConn); !isHerald(s) && c.n > 0 && (leanS.n == 0 || c.med < leanS.med) {
					lean, leanS = s, c
				}
			}
			if leanS.n > 0 {
				fmt.Fprintf(&w, "- idle: herald %s KiB/conn vs leanest peer %s %s (%s)\n",
					kib(h.med), lean, kib(leanS.med), verdict(h.med <= leanS.med))
			}
		}
	}

	// Who was busy: a server under 100% was waiting on the client (or the
	// network stack), not on itself.
	if len(b.sizes) == 0 {
		return w.String()
	}
	fmt.Fprintf(&w, "\nLoad during the echo windows (medians): server core busy / client core busy / other processes, in %% of a core.\n\n")
	fmt.Fprintf(&w, "| server |")
	for _, sz := range b.sizes {
		fmt.Fprintf(&w, " %s |", sizeName(sz))
	}
	fmt.Fprintf(&w, "\n|---|%s\n", strings.Repeat("--:|", len(b.sizes)))
	for _, s := range b.servers {
		fmt.Fprintf(&w, "| %s |", s)
		for _, sz := range b.sizes {
			rs := echo[s][sz]
			if len(rs) == 0 {
				fmt.Fprintf(&w, " — |")
				continue
			}
			fmt.Fprintf(&w, " %.0f / %.0f / %.0f |",
				100*pick(rs, func(r echoResult) float64 { return r.serverBusy }).med,
				100*pick(rs, func(r echoResult) float64 { return r.clientBusy }).med,
				100*pick(rs, func(r echoResult) float64 { return r.other }).med)
		}
		fmt.Fprintln(&w)
	}
	return w.String()
}

// isHerald tells herald and its variants (herald@...) from the peers.
func isHerald(s string) bool {
	name, _ := splitServer(s)
	return name == "herald"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
