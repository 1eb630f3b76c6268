package main

import (
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// reqResult is one measured requests window.
type reqResult struct {
	rate      float64 // replies per second
	cpuPerReq float64 // server user+system µs per request
	load              // how busy the machine was
}

// fanResult is one fan-out run's measured publishes.
type fanResult struct {
	median, p90 float64 // ms from a publish's send to its last delivery
	cpuPerPub   float64 // server user+system ms per publish (and its deliveries)
	load
}

// load is how busy the cores were during a window, in cores: the server,
// the load client and every other process on the machine.
type load struct{ server, client, other float64 }

// startServer starts a server pinned to the server core and returns it with
// the address it listens on.
func (b *bench) startServer(name string) (*proc.Proc, string, error) {
	var srv *proc.Proc
	var err error
	switch name {
	case "herald":
		srv, err = proc.Start(name, b.serverCPU, b.bin("herald"), "-addr", "127.0.0.1:0")
	case "floor":
		srv, err = proc.Start(name, b.serverCPU, b.bin("floor"), "-addr", "127.0.0.1:0")
	case "hapi":
		srv, err = proc.Start(name, b.serverCPU, b.node, b.hapiScript)
	default:
		err = fmt.Errorf("unknown server %q", name)
	}
	if err != nil {
		return nil, "", err
	}
	l, err := srv.Expect("listening ", 30*time.Second)
	if err != nil {
		srv.Kill()
		return nil, "", err
	}
	addr := strings.TrimPrefix(strings.TrimPrefix(l, "listening "), "on http://")
	if _, err := strconv.Atoi(addr); err == nil { // hapi prints the port only
		addr = "127.0.0.1:" + addr
	}
	return srv, addr, nil
}

// window reads the server's CPU ticks and the machine's busy ticks.
type window struct{ server, machine int64 }

func (b *bench) mark(pid int) (window, error) {
	c, err := proc.CPUTicks(pid)
	return window{server: c, machine: proc.BusyTicks()}, err
}

// loadOver turns two marks, the window's length and the client's own CPU
// seconds into a load.
func (b *bench) loadOver(w0, w1 window, secs, clientCPU float64) (load, float64) {
	serverCPU := float64(w1.server-w0.server) / b.clk
	other := max(0, float64(w1.machine-w0.machine)/b.clk-serverCPU-clientCPU)
	return load{server: serverCPU / secs, client: clientCPU / secs, other: other / secs}, serverCPU
}

// requests runs the load client in requests mode against one fresh server.
func (b *bench) requests(name string) (reqResult, error) {
	var r reqResult
	proc.WaitQuiet(b.quiet, b.quietWait, b.clk)
	srv, addr, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := proc.Start("load", b.clientCPU, b.bin("load"), "-mode", "requests", "-addr", addr,
		"-conns", fmt.Sprint(b.conns), "-depth", fmt.Sprint(b.depth),
		"-warmup", b.warmup.String(), "-duration", b.duration.String(), "-max-time", "5m")
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	if _, err := cl.Expect("start", b.warmup+time.Minute); err != nil {
		return r, err
	}
	w0, err := b.mark(srv.PID())
	if err != nil {
		return r, err
	}
	l, err := cl.Expect("stop ", b.duration+time.Minute)
	if err != nil {
		return r, err
	}
	w1, err := b.mark(srv.PID())
	if err != nil {
		return r, err
	}
	var reqs int64
	var secs, clientCPU float64
	if _, err := fmt.Sscanf(l, "stop reqs=%d secs=%g cpu=%g", &reqs, &secs, &clientCPU); err != nil {
		return r, fmt.Errorf("load printed %q: %w", l, err)
	}
	if err := cl.Wait(30 * time.Second); err != nil {
		return r, fmt.Errorf("load: %w", err)
	}
	if reqs <= 0 || secs <= 0 {
		return r, fmt.Errorf("no replies in the window (%q)", l)
	}
	ld, serverCPU := b.loadOver(w0, w1, secs, clientCPU)
	return reqResult{rate: float64(reqs) / secs, cpuPerReq: serverCPU / float64(reqs) * 1e6, load: ld}, nil
}

// fanout runs the load client in fanout mode against one fresh server.
func (b *bench) fanout(name string) (fanResult, error) {
	var r fanResult
	proc.WaitQuiet(b.quiet, b.quietWait, b.clk)
	srv, addr, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := proc.Start("load", b.clientCPU, b.bin("load"), "-mode", "fanout", "-addr", addr,
		"-subs", fmt.Sprint(b.subs), "-pubs", fmt.Sprint(b.pubs), "-warmup-pubs", fmt.Sprint(b.warmupPubs),
		"-timeout", "10s", "-max-time", "10m")
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	if _, err := cl.Expect("open ", 5*time.Minute); err != nil {
		return r, err
	}
	if _, err := cl.Expect("start", 5*time.Minute); err != nil {
		return r, err
	}
	w0, err := b.mark(srv.PID())
	if err != nil {
		return r, err
	}
	l, err := cl.Expect("stop ", 5*time.Minute)
	if err != nil {
		return r, err
	}
	w1, err := b.mark(srv.PID())
	if err != nil {
		return r, err
	}
	var pubs int64
	var secs, clientCPU float64
	if _, err := fmt.Sscanf(l, "stop pubs=%d secs=%g cpu=%g", &pubs, &secs, &clientCPU); err != nil {
		return r, fmt.Errorf("load printed %q: %w", l, err)
	}
	lat, err := cl.Expect("lat", 30*time.Second)
	if err != nil {
		return r, err
	}
	var ms []float64
	for f := range strings.FieldsSeq(strings.TrimPrefix(lat, "lat")) {
		us, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return r, fmt.Errorf("load printed %.100q: %w", lat, err)
		}
		ms = append(ms, us/1e3)
	}
	if err := cl.Wait(30 * time.Second); err != nil {
		return r, fmt.Errorf("load: %w", err)
	}
	if pubs <= 0 || secs <= 0 || len(ms) != int(pubs) {
		return r, fmt.Errorf("load printed %q and %d latencies", l, len(ms))
	}
	ld, serverCPU := b.loadOver(w0, w1, secs, clientCPU)
	slices.Sort(ms)
	return fanResult{
		median:    quantile(ms, 0.5),
		p90:       quantile(ms, 0.9),
		cpuPerPub: serverCPU / float64(pubs) * 1e3,
		load:      ld,
	}, nil
}

// quantile returns the q-quantile of sorted xs, interpolating between
// neighbours.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	p := q * float64(len(xs)-1)
	i := int(p)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (p-float64(i))*(xs[i+1]-xs[i])
}

// quietly runs measure and, while other processes took more than
// b.maxOther cores during its window, reruns it up to b.retries times,
// keeping the quietest run.
func quietly[T interface{ busy() load }](b *bench, what string, measure func() (T, error)) (T, error) {
	best, err := measure()
	for try := 0; err == nil && best.busy().other > b.maxOther && try < b.retries; try++ {
		log.Printf("%s: other processes took %.2f cores during the window; running it again", what, best.busy().other)
		r, err2 := measure()
		if err2 != nil {
			log.Printf("%s rerun: %v", what, err2)
			continue
		}
		if r.busy().other < best.busy().other {
			best = r
		}
	}
	return best, err
}

func (l load) busy() load { return l }
