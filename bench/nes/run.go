package main

import (
	"fmt"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/proc"
)

// reqResult is one measured requests window.
type reqResult struct {
	rate         float64 // replies per second
	cpuPerReq    float64 // server user+system µs per request
	clientPerReq float64 // the load client's own user+system µs per request
	harness.Load         // how busy the cores were
}

// clientRun names a run of part clients: a load client against a server.
type clientRun struct{ server, client string }

func (r clientRun) String() string { return r.client + "→" + r.server }

// clientRuns lists the runs of part clients, in the order they run in a
// repeat: for each server, each client.
func (b *bench) clientRuns() []clientRun {
	var rs []clientRun
	for _, s := range b.clientSrvs {
		for _, c := range b.clients {
			rs = append(rs, clientRun{server: s, client: c})
		}
	}
	return rs
}

// fanResult is one fan-out run's measured publishes.
type fanResult struct {
	median, p90  float64 // ms from a publish's send to its last delivery
	cpuPerPub    float64 // server user+system ms per publish (and its deliveries)
	clientPerPub float64 // the load client's own user+system ms per publish
	harness.Load         // how busy the cores were
}

// startServer starts a fresh server process.
func (b *bench) startServer(name string) (*harness.Server, error) {
	switch name {
	case "herald", "floor":
		return b.StartBuilt(name)
	case "hapi":
		return b.StartServer(name, b.node, b.hapiScript)
	}
	return nil, fmt.Errorf("unknown server %q", name)
}

// startRequests starts the load client named client (raw, herald or node;
// see allClients) with the requests load against addr, pinned to the client
// cores, over transport (ws, sse or poll: only the raw client speaks sse and
// poll). The three take the same flags and print the same lines.
func (b *bench) startRequests(client, transport, addr string) (*proc.Proc, error) {
	args := []string{"-addr", addr, "-conns", fmt.Sprint(b.conns), "-depth", fmt.Sprint(b.depth),
		"-warmup", b.warmup.String(), "-duration", b.duration.String(), "-max-time", "5m"}
	switch client {
	case "raw", "herald":
		return b.StartClient(append([]string{"-mode", "requests", "-client", client, "-transport", transport}, args...)...)
	case "node":
		return proc.Start("load", b.ClientCPU, b.node, append([]string{b.nodeLoad}, args...)...)
	}
	return nil, fmt.Errorf("unknown client %q", client)
}

// requests runs the load client named client in requests mode, over
// transport, against one fresh server.
func (b *bench) requests(name, client, transport string) (reqResult, error) {
	var r reqResult
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	srv, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := b.startRequests(client, transport, srv.Addr)
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	e, err := b.Counts(srv, cl, "reqs", b.warmup+time.Minute, b.duration+time.Minute, 30*time.Second)
	if err != nil {
		return r, err
	}
	return reqResult{
		rate:         e.Rate(),
		cpuPerReq:    e.ServerPerMsg(),
		clientPerReq: e.ClientPerMsg(),
		Load:         e.Load(),
	}, nil
}

// fanout runs the load client in fanout mode, over transport, against one
// fresh server.
func (b *bench) fanout(name, transport string, subs int) (fanResult, error) {
	var r fanResult
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	srv, err := b.startServer(name)
	if err != nil {
		return r, err
	}
	defer srv.Kill()
	cl, err := b.StartClient("-mode", "fanout", "-transport", transport, "-addr", srv.Addr,
		"-subs", fmt.Sprint(subs), "-pubs", fmt.Sprint(b.pubs), "-warmup-pubs", fmt.Sprint(b.warmupPubs),
		"-timeout", "10s", "-max-time", "10m")
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	p, err := b.Publishes(srv, cl, 30*time.Second)
	if err != nil {
		return r, err
	}
	return fanResult{
		median:       harness.Quantile(p.Millis, 0.5),
		p90:          harness.Quantile(p.Millis, 0.9),
		cpuPerPub:    p.PerPub(p.ServerCPU),
		clientPerPub: p.PerPub(p.ClientCPU),
		Load:         p.Load(),
	}, nil
}
