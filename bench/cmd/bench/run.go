package main

import (
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// echoResult is one measured echo window.
type echoResult struct {
	rate       float64 // echoed messages per second
	cpuPerMsg  float64 // server user+system µs per message
	serverBusy float64 // server CPU seconds per second of window (1 = its core saturated)
	clientBusy float64 // the same for the load client
	other      float64 // everyone else's CPU on the machine, in cores
}

// idleResult is one idle-connections measurement.
type idleResult struct {
	perConn float64 // KiB of server RSS per connection
	baseKiB int64   // server RSS before the connections
	rssKiB  int64   // server RSS with them
}

// startServer starts a server pinned to the server core and returns it with
// the address it listens on.
func (b *bench) startServer(name string) (*proc.Proc, string, error) {
	dir, args := splitServer(name)
	srv, err := proc.Start(name, b.serverCPU, b.bin(dir), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	if err != nil {
		return nil, "", err
	}
	l, err := srv.Expect("listening ", 10*time.Second)
	if err != nil {
		srv.Kill()
		return nil, "", err
	}
	return srv, strings.TrimPrefix(l, "listening "), nil
}

// echo runs the load client in echo mode against one fresh server process.
func (b *bench) echo(name string, size int) (echoResult, error) {
	var r echoResult
	proc.WaitQuiet(b.quiet, b.quietWait, b.clk)
	srv, addr, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := proc.Start("load", b.clientCPU, b.bin("load"), "-mode", "echo", "-addr", addr,
		"-conns", fmt.Sprint(b.conns), "-size", fmt.Sprint(size), "-depth", fmt.Sprint(b.depth),
		"-warmup", b.warmup.String(), "-duration", b.duration.String())
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	if _, err := cl.Expect("start", b.warmup+30*time.Second); err != nil {
		return r, err
	}
	c0, err := proc.CPUTicks(srv.PID())
	if err != nil {
		return r, err
	}
	m0 := proc.BusyTicks()
	l, err := cl.Expect("stop ", b.duration+30*time.Second)
	if err != nil {
		return r, err
	}
	c1, err := proc.CPUTicks(srv.PID())
	if err != nil {
		return r, err
	}
	m1 := proc.BusyTicks()
	var msgs int64
	var secs, clientCPU float64
	if _, err := fmt.Sscanf(l, "stop msgs=%d secs=%g cpu=%g", &msgs, &secs, &clientCPU); err != nil {
		return r, fmt.Errorf("load printed %q: %w", l, err)
	}
	if err := cl.Wait(20 * time.Second); err != nil {
		return r, fmt.Errorf("load: %w", err)
	}
	if msgs <= 0 || secs <= 0 {
		return r, fmt.Errorf("no messages echoed in the window (%q)", l)
	}
	serverCPU := float64(c1-c0) / b.clk
	r = echoResult{
		rate:       float64(msgs) / secs,
		cpuPerMsg:  serverCPU / float64(msgs) * 1e6,
		serverBusy: serverCPU / secs,
		clientBusy: clientCPU / secs,
		other:      max(0, float64(m1-m0)/b.clk-serverCPU-clientCPU) / secs,
	}
	return r, nil
}

// echoQuiet runs b.echo and, while other processes took more than
// b.maxOther cores during the window, reruns it up to b.retries times (and
// not after the budget is spent), keeping the quietest run.
func (b *bench) echoQuiet(name string, size int, began time.Time) (echoResult, error) {
	best, err := b.echo(name, size)
	for try := 0; err == nil && best.other > b.maxOther && try < b.retries && time.Since(began) < b.budget; try++ {
		log.Printf("%s %dB: other processes took %.2f cores during the window; running it again", name, size, best.other)
		r, err2 := b.echo(name, size)
		if err2 != nil {
			log.Printf("%s %dB rerun: %v", name, size, err2)
			continue
		}
		if r.other < best.other {
			best = r
		}
	}
	return best, err
}

// idle opens b.idleConns connections to one fresh server process and
// measures how much its RSS grew.
func (b *bench) idle(name string) (idleResult, error) {
	var r idleResult
	srv, addr, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	time.Sleep(300 * time.Millisecond)
	base, err := proc.RSSKiB(srv.PID())
	if err != nil {
		return r, err
	}
	cl, err := proc.Start("load", b.clientCPU, b.bin("load"), "-mode", "idle", "-addr", addr,
		"-conns", fmt.Sprint(b.idleConns), "-hold", "5m")
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	if _, err := cl.Expect("open ", 3*time.Minute); err != nil {
		return r, err
	}
	rss, err := proc.SettledRSS(srv.PID())
	if err != nil {
		return r, err
	}
	if _, err := io.WriteString(cl.Stdin, "stop\n"); err != nil {
		return r, err
	}
	l, err := cl.Expect("closed", 30*time.Second)
	if err != nil {
		return r, err
	}
	if err := cl.Wait(30 * time.Second); err != nil {
		return r, fmt.Errorf("load: %w", err)
	}
	if l != "closed dropped=0" {
		return r, fmt.Errorf("the server dropped idle connections (%s)", l)
	}
	return idleResult{perConn: float64(rss-base) / float64(b.idleConns), baseKiB: base, rssKiB: rss}, nil
}
