package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
)

var (
	micros  = harness.Fixed(1)
	bytesF  = harness.Fixed(0)
	kib     = harness.Fixed(1)
	times   = func(v float64) string { return fmt.Sprintf("%.2fx", v) }
	perSec  = func(r echoResult) float64 { return r.rate }
	perMsg  = func(r echoResult) float64 { return r.cpuPerMsg }
	up      = func(r echoResult) float64 { return r.upPerMsg }
	down    = func(r echoResult) float64 { return r.downPerMsg }
	ratio   = func(r echoResult) float64 { return r.ratio() }
	perConn = func(r memResult) float64 { return r.PerConn }
)

func (b *bench) report(res results, took time.Duration) string {
	var w strings.Builder
	const base = "herald"
	hasBase := slices.Contains(b.servers, base)
	fmt.Fprintf(&w, "# herald compressed echo benchmark (permessage-deflate)\n\n")
	fmt.Fprintf(&w, "%s, `go run ./deflate %s` (%s measured, plus builds).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(os.Args[1:], " "), took.Round(time.Second))
	fmt.Fprintf(&w, "%s. Servers pinned to CPU %s, load client to CPU %s. "+
		"Echo: %d connections, one message in flight each, 16 KiB JSON documents as text messages, %v warm-up + %v measured; "+
		"memory: %d connections that each echoed one document, then idle. A fresh server process per run; median of %d runs (min–max); "+
		"ratio = the server's median ÷ herald's under the same offer.\n\n",
		harness.Machine(), b.ServerCPU, b.ClientCPU, b.conns, b.warmup, b.duration, b.memConns, b.Repeat)

	fmt.Fprintf(&w, "| offer | server | response | msgs/s | CPU µs/msg | wire B/msg up | wire B/msg down | ratio on the wire | RSS KiB/conn |\n")
	fmt.Fprintf(&w, "|---|---|---|--:|--:|--:|--:|--:|--:|\n")
	anyNoisy := false
	for _, o := range b.offers {
		for _, s := range b.servers {
			k, bk := key{s, o.name}, key{base, o.name}
			rs, brs := res.echo[k], res.echo[bk]
			noisy := harness.Noisy(&b.Config, rs)
			anyNoisy = anyNoisy || noisy
			mark := func(s harness.Stat) harness.Stat { s.Noisy = noisy; return s }
			isBase := s == base
			fmt.Fprintf(&w, "| %s | %s | `%s` | %s | %s | %s | %s | %s | %s |\n", o.name, s, response(res, k),
				harness.Cell(mark(harness.Pick(rs, perSec)), harness.Rate, harness.Pick(brs, perSec), isBase),
				harness.Cell(mark(harness.Pick(rs, perMsg)), micros, harness.Pick(brs, perMsg), isBase),
				harness.Cell(harness.Pick(rs, up), bytesF, harness.Stat{}, false),
				harness.Cell(harness.Pick(rs, down), bytesF, harness.Pick(brs, down), isBase),
				harness.Cell(harness.Pick(rs, ratio), times, harness.Stat{}, false),
				harness.Cell(harness.Pick(res.mem[k], perConn), kib, harness.Pick(res.mem[bk], perConn), isBase))
		}
	}
	fmt.Fprintf(&w, "\nwire B/msg: socket bytes per echoed message, frame headers included (up: client → server, "+
		"down: server → client); ratio on the wire: %d ÷ down. RSS KiB/conn: (VmRSS with %d connections − VmRSS before) ÷ %d.\n",
		docSize, b.memConns, b.memConns)
	b.Notes(&w, anyNoisy, b.buildFails, b.servers, res.failures)

	if hasBase {
		b.bar(&w, res)
	}

	names := make([]string, len(b.offers))
	for i, o := range b.offers {
		names[i] = o.name
	}
	harness.BusyTable(&w, b.servers, names, func(s string, i int) []harness.Load {
		return harness.Loads(res.echo[key{s, b.offers[i].name}])
	})
	return w.String()
}

// bar judges herald against the bar.
func (b *bench) bar(w *strings.Builder, res results) {
	fmt.Fprintf(w, "\n**The bar:**\n\n")
	for _, o := range b.offers {
		k := key{"herald", o.name}
		mem := harness.Pick(res.mem[k], perConn)
		cpu := harness.Pick(res.echo[k], perMsg)
		rat := harness.Pick(res.echo[k], ratio)
		switch o.name {
		case "client-no-context":
			if mem.N > 0 {
				fmt.Fprintf(w, "- `%s`: herald %s KiB/conn at %d connections, bar 32 KiB (%s), at a compression ratio of %s on the wire\n",
					o.header, kib(mem.Med), b.memConns, harness.Verdict(mem.Med <= 32), measured(rat, times))
			}
			cheap, cheapS := harness.Best(b.servers, func(s string) bool { return harness.Named(s, "herald") },
				func(s string) harness.Stat { return harness.Pick(res.echo[key{s, o.name}], perMsg) }, false)
			if cpu.N > 0 && cheapS.N > 0 {
				fmt.Fprintf(w, "- `%s`: herald %s µs/msg of server CPU vs the cheapest peer, %s, %s µs/msg (%s)\n",
					o.header, micros(cpu.Med), cheap, micros(cheapS.Med), harness.Verdict(cpu.Med <= cheapS.Med))
			}
		case "browser":
			resp := response(res, k)
			sb, cb := windowBits(resp)
			held := "memory not measured"
			if mem.N > 0 {
				held = fmt.Sprintf("herald holds %s KiB/conn at %d connections", kib(mem.Med), b.memConns)
			}
			fmt.Fprintf(w, "- `%s`: herald answered `%s`, so it compresses with a %d-bit window and the client with a %d-bit one; "+
				"%s (ratio on the wire %s)\n",
				o.header, resp, sb, cb, held, measured(rat, times))
		}
	}
}

// measured formats st's median, or says it was not measured.
func measured(st harness.Stat, format func(float64) string) string {
	if st.N == 0 {
		return "not measured"
	}
	return format(st.Med)
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
