package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/proc"
)

// row is one line of the table: a measurement for each server.
type row struct {
	name   string
	stats  map[string]harness.Stat // by server
	format func(float64) string
	bar    string                   // the bar on herald / hapi, if any
	meets  func(ratio float64) bool // nil: no bar
}

func (r row) String() string {
	h, j := r.stats["herald"], r.stats["hapi"]
	ratio, met := "—", ""
	if h.N > 0 && j.N > 0 && j.Med > 0 {
		x := h.Med / j.Med
		ratio = fmt.Sprintf("%.2fx", x)
		if r.meets != nil {
			met = "no"
			if r.meets(x) {
				met = "**yes**"
			}
		}
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |\n",
		r.name, cell(h, r.format), cell(j, r.format), ratio, r.bar, met, cell(r.stats["floor"], r.format))
}

// cell renders "median (min–max)", with no ratio.
func cell(s harness.Stat, format func(float64) string) string {
	return harness.Cell(s, format, harness.Stat{}, false)
}

// stats summarizes one measurement of every server's runs.
func stats[T any](runs map[string][]T, f func(T) float64) map[string]harness.Stat {
	m := map[string]harness.Stat{}
	for s, rs := range runs {
		m[s] = harness.Pick(rs, f)
	}
	return m
}

func (b *bench) report(reqs map[string][]reqResult, fans map[int]map[string][]fanResult, cls map[clientRun][]reqResult,
	fb fallbackResults, failures map[string][]string, took time.Duration) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }

	w("# nes benchmark: herald against hapi + @hapi/nes\n\n")
	w("%s, %s. Command: `cd bench && go run ./nes", time.Now().Format("2006-01-02 15:04 MST"), machine())
	if len(b.args) > 0 {
		w(" %s", strings.Join(b.args, " "))
	}
	w("` (took %s).\n\n", took.Round(time.Second))
	w("Go %s; %s. Servers pinned to CPU %s, the load client to CPU %s (`taskset -c`; herald and the Go "+
		"clients run with GOMAXPROCS=1). Heartbeats at the servers' defaults (15 s, 5 s), answered by the "+
		"clients. Each cell is the median over %d runs, each with a fresh server process, with the range "+
		"(min–max).\n\n",
		strings.TrimPrefix(runtime.Version(), "go"), b.peerVersions(), b.ServerCPU, b.ClientCPU, b.Repeat)
	if b.parts["requests"] || b.parts["fanout"] {
		b.serversReport(&sb, reqs, fans)
	}
	if b.parts["clients"] {
		b.clientsReport(&sb, cls)
	}
	if b.parts["fallback"] {
		b.fallbackReport(&sb, fb)
	}

	for _, k := range slices.Sorted(maps.Keys(failures)) {
		for _, f := range failures[k] {
			w("\nFailed: %s\n", f)
		}
	}
	return sb.String()
}

// serversReport writes the servers' table (parts requests and fanout) and their core use.
func (b *bench) serversReport(sb *strings.Builder, reqs map[string][]reqResult, fanBySubs map[int]map[string][]fanResult) {
	w := func(format string, args ...any) { fmt.Fprintf(sb, format, args...) }
	w("## The servers\n\n")
	w("One hand-written nes client for all servers, on raw WebSocket frames; it offers no extension, so no " +
		"server compresses. The ratio is herald's median over hapi's. *floor* is not a nes server but the " +
		"least a Go server can do to send the same bytes (nes/floor): a lower bound.\n\n")

	w("| measurement | herald | hapi + @hapi/nes | herald / hapi | bar | met | floor |\n")
	w("|---|---|---|---|---|---|---|\n")
	if b.parts["requests"] {
		w("%s", row{name: fmt.Sprintf("requests/s, GET /h (%d connections × %d in flight)", b.conns, b.depth),
			stats: stats(reqs, func(r reqResult) float64 { return r.rate }), format: harness.Rate,
			bar: "> 1x", meets: func(x float64) bool { return x > 1 }})
		w("%s", row{name: "server CPU µs per request",
			stats: stats(reqs, func(r reqResult) float64 { return r.cpuPerReq }), format: harness.Fixed(1),
			bar: "≤ 0.20x", meets: func(x float64) bool { return x <= 0.2 }})
	}
	var floorBars []string
	for _, n := range b.fanSubs {
		if !b.parts["fanout"] {
			break
		}
		fans := fanBySubs[n]
		subs := thousands(n)
		w("%s", row{name: "fan-out to " + subs + ": ms from publish to last subscriber, median",
			stats: stats(fans, func(r fanResult) float64 { return r.median }), format: harness.Fixed(2)})
		w("%s", row{name: "fan-out to " + subs + ": the same, p90",
			stats: stats(fans, func(r fanResult) float64 { return r.p90 }), format: harness.Fixed(2)})
		rates := stats(fans, func(r fanResult) float64 { return float64(n) / r.median * 1e3 })
		w("%s", row{name: "fan-out to " + subs + ": deliveries/s (" + subs + " / median)",
			stats: rates, format: harness.Rate,
			bar: "≥ 3x", meets: func(x float64) bool { return x >= 3 }})
		w("%s", row{name: "server CPU ms per publish (" + subs + " deliveries)",
			stats: stats(fans, func(r fanResult) float64 { return r.cpuPerPub }), format: harness.Fixed(2)})
		if h, f := rates["herald"], rates["floor"]; h.N > 0 && f.N > 0 && f.Med > 0 {
			x := h.Med / f.Med
			met := "not met"
			if x >= 0.8 {
				met = "met"
			}
			floorBars = append(floorBars, fmt.Sprintf("fan-out to %s: herald %s deliveries/s, %.2fx floor's %s (≥ 0.8x: %s)",
				subs, harness.Rate(h.Med), x, harness.Rate(f.Med), met))
		}
	}
	for _, l := range floorBars {
		w("\n%s", l)
	}
	if len(floorBars) > 0 {
		w("\n")
	}

	w("\nCore use during the measured windows, in %% of a core (median): server / load client / other processes.\n\n")
	w("| | herald | hapi + @hapi/nes | floor |\n|---|---|---|---|\n")
	if b.parts["requests"] {
		w("| requests |")
		for _, s := range allServers {
			w(" %s |", harness.BusyCell(harness.Loads(reqs[s])))
		}
		w("\n")
	}
	for _, n := range b.fanSubs {
		if !b.parts["fanout"] {
			break
		}
		w("| fan-out to %s |", thousands(n))
		for _, s := range allServers {
			w(" %s |", harness.BusyCell(harness.Loads(fanBySubs[n][s])))
		}
		w("\n")
	}
}

// clientNames are the columns of the clients' table.
var clientNames = map[string]string{"raw": "raw (Go)", "herald": "herald client (Go)", "node": "@hapi/nes client (Node)"}

// clientsReport writes the clients' table (part clients): for each server they ran against,
// each client's requests/s, CPU per request (its own, and the server's) and core use, with the
// herald client / @hapi/nes client ratio judged against the bar.
func (b *bench) clientsReport(sb *strings.Builder, cls map[clientRun][]reqResult) {
	w := func(format string, args ...any) { fmt.Fprintf(sb, format, args...) }
	srvNames := map[string]string{"herald": "herald's examples/nes", "hapi": "hapi + @hapi/nes (internal/testpeers/hapi-nes-server.js)"}
	var against []string
	for _, s := range b.clientSrvs {
		against = append(against, srvNames[s])
	}
	w("\n## The clients\n\n")
	w("Against %s, a fresh server process per run, the same requests load (%d connections × %d in flight, "+
		"GET /h, %v warm-up, %v measured) from each load client in turn: **raw**, the hand-written nes client "+
		"(nes/load); **herald client**, herald's Go client (package client; nes/load -client herald): a Client "+
		"per connection, %s per Client each looping on Request(ctx, \"/h\"); **@hapi/nes client**, "+
		"the official client on Node (nes/nes-client-load.js): a Client per connection, %s per Client "+
		"each awaiting request('/h'). Every reply is checked. The two library clients run with their defaults, "+
		"but none offers compression, so the server does the same work for all three, and herald's speaks "+
		"over WebSocket only (no fallback transport). **Client CPU µs per "+
		"request** is the load client process's own user+system time over the window (getrusage in Go, "+
		"process.cpuUsage() in Node; all its threads), divided by the replies in it. The ratio is the herald "+
		"client's median over the @hapi/nes client's; the bar: at most 0.5x its CPU per request.\n\n",
		strings.Join(against, " and "), b.conns, b.depth, b.warmup, b.duration,
		plural(b.depth, "goroutine"), plural(b.depth, "async loop"))

	w("| measurement |")
	for _, c := range b.clients {
		w(" %s |", clientNames[c])
	}
	w(" herald / @hapi/nes | bar | met |\n|---|%s---|---|---|\n", strings.Repeat("---|", len(b.clients)))
	for _, s := range b.clientSrvs {
		prefix := ""
		if len(b.clientSrvs) > 1 {
			prefix = s + " server: "
		}
		line := func(name string, f func(reqResult) float64, format func(float64) string, bar string, meets func(float64) bool) {
			st := map[string]harness.Stat{}
			for _, c := range b.clients {
				st[c] = harness.Pick(cls[clientRun{s, c}], f)
			}
			w("| %s%s |", prefix, name)
			for _, c := range b.clients {
				w(" %s |", cell(st[c], format))
			}
			ratio, met := "—", ""
			if h, n := st["herald"], st["node"]; h.N > 0 && n.N > 0 && n.Med > 0 {
				x := h.Med / n.Med
				ratio = fmt.Sprintf("%.2fx", x)
				if meets != nil {
					met = "no"
					if meets(x) {
						met = "**yes**"
					}
				}
			}
			w(" %s | %s | %s |\n", ratio, bar, met)
		}
		line("requests/s", func(r reqResult) float64 { return r.rate }, harness.Rate, "", nil)
		line("**client CPU µs per request**", func(r reqResult) float64 { return r.clientPerReq }, harness.Fixed(1),
			"≤ 0.50x", func(x float64) bool { return x <= 0.5 })
		line("server CPU µs per request", func(r reqResult) float64 { return r.cpuPerReq }, harness.Fixed(1), "", nil)
		w("| %score use, %% (server / client / other) |", prefix)
		for _, c := range b.clients {
			w(" %s |", harness.BusyCell(harness.Loads(cls[clientRun{s, c}])))
		}
		w(" | | |\n")
	}
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// machine names the CPU and the number of cores.
func machine() string {
	return fmt.Sprintf("%s, %d cores", proc.CPUModel(), runtime.NumCPU())
}

// peerVersions names Node's version and the installed hapi and @hapi/nes (the server and the
// client).
func (b *bench) peerVersions() string {
	if !b.runs("hapi") && !(b.parts["clients"] && slices.Contains(b.clients, "node")) {
		return "Node not run"
	}
	node := "Node ?"
	if out, err := exec.Command(b.node, "--version").Output(); err == nil {
		node = "Node " + strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	}
	version := func(pkg string) string {
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(b.hapiScript), "node_modules", pkg, "package.json"))
		var p struct{ Version string }
		if err != nil || json.Unmarshal(raw, &p) != nil {
			return pkg + " ?"
		}
		return pkg + " " + p.Version
	}
	return fmt.Sprintf("%s, %s, %s", node, version("@hapi/hapi"), version("@hapi/nes"))
}
