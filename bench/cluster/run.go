package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/proc"
)

// result is one measured run.
type result struct {
	rate           float64 // deliveries per second in the window
	p50, p99, max  float64 // ms, over every delivery
	last50, last99 float64 // ms, each publish's time to its last subscriber
	cpuPerPub      float64 // ms of the servers' (nodes' and broker's) user+system time per publish
	harness.Load
}

// startBroker starts a fresh broker for s on the server cores and returns the node flags that
// join it, and the process; none returns no flags and a nil process.
func (b *bench) startBroker(name string) ([]string, *proc.Proc, error) {
	switch name {
	case "none":
		return nil, nil, nil
	case "nats":
		srv, err := b.StartServer("natsd", b.Bin("natsd"))
		if err != nil {
			return nil, nil, err
		}
		return []string{"-nats", "nats://" + srv.Addr}, srv.Proc, nil
	case "redis":
		port, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		p, err := proc.Start("redis-server", b.ServerCPU, "redis-server", "--port", strconv.Itoa(port),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", "/dev/null")
		if err != nil {
			return nil, nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				p.Kill()
				return nil, nil, fmt.Errorf("redis-server not accepting on %s within 10s: %w", addr, err)
			}
		}
		return []string{"-redis", addr}, p, nil
	}
	return nil, nil, fmt.Errorf("unknown broker %q", name)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ready waits up to 10 s for a node's GET /readyz to answer 200 (its broker link is up).
func ready(addr string) error {
	c := &http.Client{Timeout: time.Second}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get("http://" + addr + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = resp.Status
	}
	return fmt.Errorf("node %s not ready within 10s: %s", addr, last)
}

// fanout measures one run: a fresh broker, s.nodes fresh nodes and one load client with subs
// subscribers.
func (b *bench) fanout(s setup, subs int) (result, error) {
	var r result
	proc.WaitQuiet(b.Quiet, b.QuietWait, b.Clk)
	flags, brk, err := b.startBroker(s.broker)
	if err != nil {
		return r, err
	}
	var pids []int
	if brk != nil {
		defer brk.Kill()
		pids = append(pids, brk.PID())
	}
	var addrs []string
	for range s.nodes {
		node, err := b.StartBuilt("herald", flags...)
		if err != nil {
			return r, err
		}
		defer node.Kill()
		pids = append(pids, node.PID())
		addrs = append(addrs, node.Addr)
	}
	for _, a := range addrs {
		if err := ready(a); err != nil {
			return r, err
		}
	}
	cl, err := b.StartClient("-addrs", strings.Join(addrs, ","), "-subs", strconv.Itoa(subs),
		"-pubs", strconv.Itoa(b.pubs), "-warmup-pubs", strconv.Itoa(b.warmupPubs), "-timeout", "10s", "-max-time", "10m")
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	if _, err := cl.Expect("open ", 5*time.Minute); err != nil {
		return r, err
	}
	w, err := b.WindowOf(pids, cl, 5*time.Minute, 10*time.Minute)
	if err != nil {
		return r, err
	}
	lat, err := cl.Expect("lat ", 30*time.Second)
	if err != nil {
		return r, err
	}
	var pubs int64
	var secs, clientCPU float64
	if err := w.Finish(cl, 30*time.Second, "stop pubs=%d secs=%g cpu=%g", &pubs, &secs, &clientCPU); err != nil {
		return r, err
	}
	var n, p50, p99, mx, l50, l99, missed int64
	if _, err := fmt.Sscanf(lat, "lat n=%d p50=%d p99=%d max=%d last50=%d last99=%d missed=%d",
		&n, &p50, &p99, &mx, &l50, &l99, &missed); err != nil {
		return r, fmt.Errorf("load printed %q: %w", lat, err)
	}
	if pubs <= 0 || secs <= 0 || n != pubs*int64(subs) {
		return r, fmt.Errorf("load printed %q and %q", w.Stop, lat)
	}
	return result{
		rate: float64(n) / secs,
		p50:  float64(p50) / 1e3, p99: float64(p99) / 1e3, max: float64(mx) / 1e3,
		last50: float64(l50) / 1e3, last99: float64(l99) / 1e3,
		cpuPerPub: w.ServerCPU / float64(pubs) * 1e3,
		Load:      w.Load(secs, clientCPU),
	}, nil
}
