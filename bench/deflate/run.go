package main

import (
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// docSize is the size of the load client's messages (deflate/load).
const docSize = 16 << 10

// key names one server under one offer.
type key struct{ server, offer string }

type results struct {
	echo     map[key][]echoResult
	mem      map[key][]memResult
	failures map[string]int
}

// echoResult is one measured echo window.
type echoResult struct {
	response   string  // the server's Sec-WebSocket-Extensions
	rate       float64 // echoed messages per second
	cpuPerMsg  float64 // server user+system µs per message
	upPerMsg   float64 // socket bytes client → server per message
	downPerMsg float64 // socket bytes server → client per message
	serverBusy float64 // server CPU seconds per second of window (1 = its core saturated)
	clientBusy float64 // the same for the load client
	other      float64 // everyone else's CPU on the machine, in cores
}

// ratio is the compression ratio of the server's messages on the wire,
// frame headers included.
func (r echoResult) ratio() float64 {
	if r.downPerMsg == 0 {
		return 0
	}
	return docSize / r.downPerMsg
}

// memResult is one memory measurement.
type memResult struct {
	response string
	perConn  float64 // KiB of server RSS per connection
	baseKiB  int64   // server RSS before the connections
	rssKiB   int64   // server RSS with them
}

// startServer starts a server with -deflate, pinned to the server core, and
// returns it with the address it listens on.
func (b *bench) startServer(name string) (*proc.Proc, string, error) {
	dir, args := splitServer(name)
	srv, err := proc.Start(name, b.serverCPU, b.bin(dir), append([]string{"-addr", "127.0.0.1:0", "-deflate"}, args...)...)
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
func (b *bench) echo(name string, o offer) (echoResult, error) {
	var r echoResult
	proc.WaitQuiet(b.quiet, b.quietWait, b.clk)
	srv, addr, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := proc.Start("load", b.clientCPU, b.bin("load"), "-mode", "echo", "-addr", addr, "-offer", o.header,
		"-conns", fmt.Sprint(b.conns), "-warmup", b.warmup.String(), "-duration", b.duration.String())
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	neg, err := cl.Expect("negotiated ", 30*time.Second)
	if err != nil {
		return r, err
	}
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
	var msgs, up, down int64
	var secs, clientCPU float64
	if _, err := fmt.Sscanf(l, "stop msgs=%d secs=%g cpu=%g up=%d down=%d", &msgs, &secs, &clientCPU, &up, &down); err != nil {
		return r, fmt.Errorf("load printed %q: %w", l, err)
	}
	if err := cl.Wait(20 * time.Second); err != nil {
		return r, fmt.Errorf("load: %w", err)
	}
	if msgs <= 0 || secs <= 0 {
		return r, fmt.Errorf("no messages echoed in the window (%q)", l)
	}
	serverCPU := float64(c1-c0) / b.clk
	return echoResult{
		response:   strings.TrimPrefix(neg, "negotiated "),
		rate:       float64(msgs) / secs,
		cpuPerMsg:  serverCPU / float64(msgs) * 1e6,
		upPerMsg:   float64(up) / float64(msgs),
		downPerMsg: float64(down) / float64(msgs),
		serverBusy: serverCPU / secs,
		clientBusy: clientCPU / secs,
		other:      max(0, float64(m1-m0)/b.clk-serverCPU-clientCPU) / secs,
	}, nil
}

// echoQuiet runs b.echo and, while other processes took more than
// b.maxOther cores during the window, reruns it up to b.retries times (and
// not after the budget is spent), keeping the quietest run.
func (b *bench) echoQuiet(name string, o offer, began time.Time) (echoResult, error) {
	best, err := b.echo(name, o)
	for try := 0; err == nil && best.other > b.maxOther && try < b.retries && time.Since(began) < b.budget; try++ {
		log.Printf("%s %s: other processes took %.2f cores during the window; running it again", name, o.name, best.other)
		r, err2 := b.echo(name, o)
		if err2 != nil {
			log.Printf("%s %s rerun: %v", name, o.name, err2)
			continue
		}
		if r.other < best.other {
			best = r
		}
	}
	return best, err
}

// mem opens b.memConns connections to one fresh server process, each of
// which echoes one document and then idles, and measures how much the
// server's RSS grew.
func (b *bench) mem(name string, o offer) (memResult, error) {
	var r memResult
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
	cl, err := proc.Start("load", b.clientCPU, b.bin("load"), "-mode", "idle", "-addr", addr, "-offer", o.header,
		"-conns", fmt.Sprint(b.memConns), "-hold", "5m")
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	neg, err := cl.Expect("negotiated ", 3*time.Minute)
	if err != nil {
		return r, err
	}
	if _, err := cl.Expect("open ", 30*time.Second); err != nil {
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
		return r, fmt.Errorf("the server dropped connections (%s)", l)
	}
	return memResult{
		response: strings.TrimPrefix(neg, "negotiated "),
		perConn:  float64(rss-base) / float64(b.memConns),
		baseKiB:  base,
		rssKiB:   rss,
	}, nil
}
