package main

import (
	"fmt"

	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/proc"
)

// echoResult is one measured echo window.
type echoResult struct {
	rate         float64 // echoed messages per second
	cpuPerMsg    float64 // server user+system µs per message
	harness.Load         // how busy the cores were (1 = a core saturated)
}

// echo runs the load client in echo mode against one fresh server process.
func (b *bench) echo(name string, size int) (echoResult, error) {
	var r echoResult
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	srv, err := b.StartBuilt(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	e, err := b.RunEcho(srv, b.conns, size, b.depth, b.warmup, b.duration)
	if err != nil {
		return r, err
	}
	return echoResult{
		rate:      e.Rate(),
		cpuPerMsg: e.ServerPerMsg(),
		Load:      e.Load(),
	}, nil
}

// idle opens b.idleConns connections to one fresh server process and
// measures how much its RSS grew.
func (b *bench) idle(name string) (harness.IdleResult, error) {
	srv, err := b.StartBuilt(name)
	if err != nil {
		return harness.IdleResult{}, err
	}
	defer srv.Kill()
	return b.Idle(srv, b.idleConns, func() (*proc.Proc, error) {
		return b.StartClient("-mode", "idle", "-addr", srv.Addr, "-conns", fmt.Sprint(b.idleConns), "-hold", "5m")
	})
}
