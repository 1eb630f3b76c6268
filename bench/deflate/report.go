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
	noisy       bool // some samples were taken while other processes were busy
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

func rate(v float64) string {
	if v >= 1e3 {
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func micros(v float64) string { return fmt.Sprintf("%.1f", v) }
func bytesF(v float64) string { return fmt.Sprintf("%.0f", v) }
func kib(v float64) string    { return fmt.Sprintf("%.1f", v) }
func times(v float64) string  { return fmt.Sprintf("%.2fx", v) }

// cell renders "median (min–max) ratio", the ratio being this median over
// the baseline's (none when base has no samples or ratio is false).
func cell(s stat, format func(float64) string, base stat, isBase, ratio bool) string {
	if s.n == 0 {
		return "—"
	}
	c := format(s.med)
	if s.noisy {
		c += "†"
	}
	if s.n > 1 {
		c += " (" + format(s.lo) + "–" + format(s.hi) + ")"
	}
	switch {
	case !ratio:
	case isBase:
		c += " 1x"
	case base.n > 0 && base.med > 0:
		c += fmt.Sprintf(" %.2fx", s.med/base.med)
	}
	return c
}

var (
	perSec  = func(r echoResult) float64 { return r.rate }
	perMsg  = func(r echoResult) float64 { return r.cpuPerMsg }
	up      = func(r echoResult) float64 { return r.upPerMsg }
	down    = func(r echoResult) float64 { return r.downPerMsg }
	ratio   = func(r echoResult) float64 { return r.ratio() }
	perConn = func(r memResult) float64 { return r.perConn }
)

func (b *bench) report(res results, took time.Duration) string {
	var w strings.Builder
	const base = "herald"
	hasBase := slices.Contains(b.servers, base)
	fmt.Fprintf(&w, "# herald compressed echo benchmark (permessage-deflate)\n\n")
	fmt.Fprintf(&w, "%s, `go run ./deflate %s` (%s measured, plus builds).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(os.Args[1:], " "), took.Round(time.Second))
	fmt.Fprintf(&w, "%s, %s, %d cores (%s); %s. Servers pinned to CPU %s, load client to CPU %s. "+
		"Echo: %d connections, one message in flight each, 16 KiB JSON documents as text messages, %v warm-up + %v measured; "+
		"memory: %d connections that each echoed one document, then idle. A fresh server process per run; median of %d runs (min–max); "+
		"ratio = the server's median ÷ herald's under the same offer.\n\n",
		proc.GoVersion(), runtime.GOARCH, runtime.NumCPU(), proc.CPUModel(), proc.Kernel(), b.serverCPU, b.clientCPU,
		b.conns, b.warmup, b.duration, b.memConns, b.repeat)

	fmt.Fprintf(&w, "| offer | server | response | msgs/s | CPU µs/msg | wire B/msg up | wire B/msg down | ratio on the wire | RSS KiB/conn |\n")
	fmt.Fprintf(&w, "|---|---|---|--:|--:|--:|--:|--:|--:|\n")
	anyNoisy := false
	for _, o := range b.offers {
		for _, s := range b.servers {
			k, bk := key{s, o.name}, key{base, o.name}
			rs, brs := res.echo[k], res.echo[bk]
			noisy := slices.ContainsFunc(rs, func(r echoResult) bool { return r.other > b.maxOther })
			anyNoisy = anyNoisy || noisy
			mark := func(s stat) stat { s.noisy = noisy; return s }
			isBase := s == base
			fmt.Fprintf(&w, "| %s | %s | `%s` | %s | %s | %s | %s | %s | %s |\n", o.name, s, response(res, k),
				cell(mark(pick(rs, perSec)), rate, pick(brs, perSec), isBase, hasBase),
				cell(mark(pick(rs, perMsg)), micros, pick(brs, perMsg), isBase, hasBase),
				cell(pick(rs, up), bytesF, pick(brs, up), isBase, false),
				cell(pick(rs, down), bytesF, pick(brs, down), isBase, hasBase),
				cell(pick(rs, ratio), times, stat{}, isBase, false),
				cell(pick(res.mem[k], perConn), kib, pick(res.mem[bk], perConn), isBase, hasBase))
		}
	}
	fmt.Fprintf(&w, "\nwire B/msg: socket bytes per echoed message, frame headers included (up: client → server, "+
		"down: server → client); ratio on the wire: %d ÷ down. RSS KiB/conn: (VmRSS with %d connections − VmRSS before) ÷ %d.\n",
		docSize, b.memConns, b.memConns)
	if anyNoisy {
		fmt.Fprintf(&w, "\n† some of these runs shared the machine with other processes using over %.2f cores "+
			"even after reruns (see the load table below); they inflate CPU per message and lower msgs/s.\n", b.maxOther)
	}
	for s, why := range b.buildFails {
		fmt.Fprintf(&w, "\n%s did not build and was left out: %s\n", s, why)
	}
	for _, s := range b.servers {
		if n := res.failures[s]; n > 0 {
			fmt.Fprintf(&w, "\n%s: %d run(s) failed (see the log); its cells have fewer samples.\n", s, n)
		}
	}

	if hasBase {
		b.bar(&w, res)
	}

	fmt.Fprintf(&w, "\nLoad during the echo windows (medians): server core busy / client core busy / other processes, in %% of a core.\n\n")
	fmt.Fprintf(&w, "| server |")
	for _, o := range b.offers {
		fmt.Fprintf(&w, " %s |", o.name)
	}
	fmt.Fprintf(&w, "\n|---|%s\n", strings.Repeat("--:|", len(b.offers)))
	for _, s := range b.servers {
		fmt.Fprintf(&w, "| %s |", s)
		for _, o := range b.offers {
			rs := res.echo[key{s, o.name}]
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

// bar judges herald against the bar.
func (b *bench) bar(w *strings.Builder, res results) {
	fmt.Fprintf(w, "\n**The bar:**\n\n")
	for _, o := range b.offers {
		k := key{"herald", o.name}
		mem := pick(res.mem[k], perConn)
		cpu := pick(res.echo[k], perMsg)
		rat := pick(res.echo[k], ratio)
		switch o.name {
		case "client-no-context":
			if mem.n > 0 {
				fmt.Fprintf(w, "- `%s`: herald %s KiB/conn at %d connections, bar 32 KiB (%s), at a compression ratio of %s on the wire\n",
					o.header, kib(mem.med), b.memConns, verdict(mem.med <= 32), times(rat.med))
			}
			cheap, cheapS := "", stat{}
			for _, s := range b.servers {
				if c := pick(res.echo[key{s, o.name}], perMsg); s != "herald" && c.n > 0 && (cheapS.n == 0 || c.med < cheapS.med) {
					cheap, cheapS = s, c
				}
			}
			if cpu.n > 0 && cheapS.n > 0 {
				fmt.Fprintf(w, "- `%s`: herald %s µs/msg of server CPU vs the cheapest peer, %s, %s µs/msg (%s)\n",
					o.header, micros(cpu.med), cheap, micros(cheapS.med), verdict(cpu.med <= cheapS.med))
			}
		case "browser":
			resp := response(res, k)
			sb, cb := windowBits(resp)
			fmt.Fprintf(w, "- `%s`: herald answered `%s`, so it compresses with a %d-bit window and the client with a %d-bit one; "+
				"herald holds %s KiB/conn at %d connections (ratio on the wire %s)\n",
				o.header, resp, sb, cb, kib(mem.med), b.memConns, times(rat.med))
		}
	}
}

// response is the negotiated extension header of a server under an offer,
// or "—".
func response(res results, k key) string {
	for _, r := range res.echo[k] {
		return r.response
	}
	for _, r := range res.mem[k] {
		return r.response
	}
	return "—"
}

// windowBits reads the server's and the client's window bits from a
// response to an offer of client_max_window_bits: absent means 15.
func windowBits(resp string) (server, client int) {
	server, client = 15, 15
	for p := range strings.SplitSeq(resp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil {
			continue
		}
		switch k {
		case "server_max_window_bits":
			server = n
		case "client_max_window_bits":
			client = n
		}
	}
	return server, client
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
