package main

import (
	"fmt"
	"strings"

	"github.com/herald-go/herald/bench/internal/harness"
)

// fallbackResults are part fallback's runs, by transport (ws, sse, poll).
type fallbackResults struct {
	reqs map[string][]reqResult
	fans map[string][]fanResult
}

// transportNames are the columns of the fallback table.
var transportNames = map[string]string{"ws": "WebSocket", "sse": "SSE + POST", "poll": "long-polling + POST"}

// fanoutBar is the bar: fan-out over sse within this factor of WebSocket's time to the
// last subscriber (medians).
const fanoutBar = 1.5

// fallbackReport writes part fallback's table: for each transport, the requests and fan-out
// measurements against herald's examples/nes, their ratios to WebSocket's, and the bar on the
// fan-out over sse.
func (b *bench) fallbackReport(sb *strings.Builder, fb fallbackResults) {
	w := func(format string, args ...any) { fmt.Fprintf(sb, format, args...) }
	w("\n## The fallback transports\n\n")
	w("Against herald's examples/nes only (hapi has no fallback), a fresh server process per run, the same nes "+
		"by hand (nes/load) over each transport: **WebSocket** (raw frames, as in the servers' table); **SSE + POST**, "+
		"herald's fallback with an event stream down and JSON POSTs up (`fallback.Dial`, one `fallback.Conn` per "+
		"connection); **long-polling + POST**, the same with `DialOptions.Poll`. Requests: %d connections × %d in "+
		"flight, GET /h, %v warm-up, %v measured. Fan-out: %s subscribers of /item/5, %d publishes measured after %d, "+
		"each published by a nes request POST /publish on a WebSocket connection; the time runs from just before the "+
		"publish is written until the last subscriber has read it. Over WebSocket one epoll loop reads every "+
		"subscriber; over the fallback each session is read by a goroutine of its own, on top of the Conn's own. "+
		"The fallback's HTTP client is shared by the sessions: HTTP/1.1, no proxy, a keep-alive pool of one idle "+
		"connection per session. The ratio is the transport's median over WebSocket's; the bar: the fan-out over SSE "+
		"within %.1fx of WebSocket's time to the last subscriber (median).\n\n",
		b.conns, b.depth, b.warmup, b.duration, thousands(b.subs), b.pubs, b.warmupPubs, fanoutBar)

	w("| measurement |")
	for _, t := range b.transports {
		w(" %s |", transportNames[t])
	}
	w(" sse / ws | poll / ws | bar | met |\n|---|%s---|---|---|---|\n", strings.Repeat("---|", len(b.transports)))
	line := func(name string, st map[string]harness.Stat, format func(float64) string, bar bool) {
		w("| %s |", name)
		for _, t := range b.transports {
			w(" %s |", cell(st[t], format))
		}
		ratio := func(t string) (float64, string) {
			x, base := st[t], st["ws"]
			if x.N == 0 || base.N == 0 || base.Med <= 0 {
				return 0, "—"
			}
			return x.Med / base.Med, fmt.Sprintf("%.2fx", x.Med/base.Med)
		}
		sse, sseCell := ratio("sse")
		_, pollCell := ratio("poll")
		verdict, barCell := "", ""
		if bar {
			barCell = fmt.Sprintf("sse ≤ %.1fx", fanoutBar)
			if sseCell != "—" {
				verdict = "no"
				if sse <= fanoutBar {
					verdict = "**yes**"
				}
			}
		}
		w(" %s | %s | %s | %s |\n", sseCell, pollCell, barCell, verdict)
	}
	reqs := func(f func(reqResult) float64) map[string]harness.Stat { return stats(fb.reqs, f) }
	fans := func(f func(fanResult) float64) map[string]harness.Stat { return stats(fb.fans, f) }
	line(fmt.Sprintf("requests/s, GET /h (%d connections × %d in flight)", b.conns, b.depth),
		reqs(func(r reqResult) float64 { return r.rate }), harness.Rate, false)
	line("server CPU µs per request", reqs(func(r reqResult) float64 { return r.cpuPerReq }), harness.Fixed(1), false)
	line("client CPU µs per request", reqs(func(r reqResult) float64 { return r.clientPerReq }), harness.Fixed(1), false)
	line("**fan-out to "+thousands(b.subs)+": ms from publish to last subscriber, median**",
		fans(func(r fanResult) float64 { return r.median }), harness.Fixed(2), true)
	line("fan-out: the same, p90", fans(func(r fanResult) float64 { return r.p90 }), harness.Fixed(2), false)
	line("fan-out: deliveries/s ("+thousands(b.subs)+" / median)",
		fans(func(r fanResult) float64 { return float64(b.subs) / r.median * 1e3 }), harness.Rate, false)
	line("server CPU ms per publish ("+thousands(b.subs)+" deliveries)",
		fans(func(r fanResult) float64 { return r.cpuPerPub }), harness.Fixed(2), false)
	line("client CPU ms per publish", fans(func(r fanResult) float64 { return r.clientPerPub }), harness.Fixed(2), false)
	for _, part := range []string{"requests", "fan-out"} {
		w("| core use, %s, %% (server / client / other) |", part)
		for _, t := range b.transports {
			if part == "requests" {
				w(" %s |", harness.BusyCell(harness.Loads(fb.reqs[t])))
			} else {
				w(" %s |", harness.BusyCell(harness.Loads(fb.fans[t])))
			}
		}
		w(" | | | |\n")
	}
}

// thousands writes n with a comma between thousands: 1,000.
func thousands(n int) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%s,%03d", thousands(n/1000), n%1000)
}
