package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
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
	response     string  // the server's Sec-WebSocket-Extensions
	rate         float64 // echoed messages per second
	cpuPerMsg    float64 // server user+system µs per message
	upPerMsg     float64 // socket bytes client → server per message
	downPerMsg   float64 // socket bytes server → client per message
	harness.Load         // how busy the cores were (1 = a core saturated)
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
	harness.IdleResult
}

// echo runs the load client in echo mode against one fresh server process.
func (b *bench) echo(name string, o offer) (echoResult, error) {
	var r echoResult
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	srv, err := b.StartBuilt(name, "-deflate")
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := b.StartClient("-mode", "echo", "-addr", srv.Addr, "-offer", o.header,
		"-conns", fmt.Sprint(b.conns), "-warmup", b.warmup.String(), "-duration", b.duration.String())
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	neg, err := cl.Expect("negotiated ", 30*time.Second)
	if err != nil {
		return r, err
	}
	w, err := b.Window(srv, cl, b.warmup+30*time.Second, b.duration+30*time.Second)
	if err != nil {
		return r, err
	}
	var msgs, up, down int64
	var secs, clientCPU float64
	if err := w.Finish(cl, 20*time.Second, "stop msgs=%d secs=%g cpu=%g up=%d down=%d", &msgs, &secs, &clientCPU, &up, &down); err != nil {
		return r, err
	}
	if msgs <= 0 || secs <= 0 {
		return r, fmt.Errorf("no messages echoed in the window (%q)", w.Stop)
	}
	return echoResult{
		response:   strings.TrimPrefix(neg, "negotiated "),
		rate:       float64(msgs) / secs,
		cpuPerMsg:  w.ServerCPU / float64(msgs) * 1e6,
		upPerMsg:   float64(up) / float64(msgs),
		downPerMsg: float64(down) / float64(msgs),
		Load:       w.Load(secs, clientCPU),
	}, nil
}

// mem opens b.memConns connections to one fresh server process, each of
// which echoes one document and then idles, and measures how much the
// server's RSS grew.
func (b *bench) mem(name string, o offer) (memResult, error) {
	var r memResult
	srv, err := b.StartBuilt(name, "-deflate")
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	r.IdleResult, err = b.Idle(srv, b.memConns, func() (*proc.Proc, error) {
		cl, err := b.StartClient("-mode", "idle", "-addr", srv.Addr, "-offer", o.header,
			"-conns", fmt.Sprint(b.memConns), "-hold", "5m")
		if err != nil {
			return nil, err
		}
		neg, err := cl.Expect("negotiated ", 3*time.Minute)
		if err != nil {
			cl.Kill()
			return nil, err
		}
		r.response = strings.TrimPrefix(neg, "negotiated ")
		return cl, nil
	})
	return r, err
}
