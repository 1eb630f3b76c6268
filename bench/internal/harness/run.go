package harness

import (
	"fmt"
	"io"
	"log"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// Server is a server process pinned to the server cores, and the address it listens on.
type Server struct {
	*proc.Proc
	Addr string // host:port
}

// StartServer starts bin with args pinned to ServerCPU, named name in errors, and waits for
// the line that says where it listens.
func (c *Config) StartServer(name, bin string, args ...string) (*Server, error) {
	p, err := proc.Start(name, c.ServerCPU, bin, args...)
	if err != nil {
		return nil, err
	}
	l, err := p.Expect("listening ", 30*time.Second)
	if err != nil {
		p.Kill()
		return nil, err
	}
	addr := strings.TrimPrefix(strings.TrimPrefix(l, "listening "), "on http://")
	if _, err := strconv.Atoi(addr); err == nil { // a port only (hapi)
		addr = "127.0.0.1:" + addr
	}
	return &Server{Proc: p, Addr: addr}, nil
}

// StartBuilt starts the built server s, NAME or NAME@ARGS ([SplitServer]), on a free loopback
// port: with -addr, then flags, then the entry's own ARGS.
func (c *Config) StartBuilt(s string, flags ...string) (*Server, error) {
	name, args := SplitServer(s)
	return c.StartServer(s, c.Bin(name), slices.Concat([]string{"-addr", "127.0.0.1:0"}, flags, args)...)
}

// StartClient starts the built load client with args, pinned to ClientCPU.
func (c *Config) StartClient(args ...string) (*proc.Proc, error) {
	return proc.Start("load", c.ClientCPU, c.Bin("load"), args...)
}

// Load is how busy the cores were during a window, in cores: the server, the load client and
// every other process on the machine.
type Load struct{ Server, Client, Other float64 }

// Busy returns l; results that embed a Load satisfy [Quietly]'s constraint through it.
func (l Load) Busy() Load { return l }

// Window is what the server and the machine did during a load client's measured window.
type Window struct {
	Stop      string  // the client's "stop " line
	ServerCPU float64 // the server's user+system seconds in the window
	busy      float64 // every process's CPU seconds in the window
}

// Window waits up to startWait for the client's "start" line, reads the server's and the
// machine's CPU time, waits up to stopWait for the client's "stop " line, and reads them
// again.
func (c *Config) Window(srv *Server, cl *proc.Proc, startWait, stopWait time.Duration) (Window, error) {
	return c.WindowOf([]int{srv.PID()}, cl, startWait, stopWait)
}

// WindowOf is [Config.Window] for a server made of several processes (nodes and a broker):
// ServerCPU is the sum of theirs.
func (c *Config) WindowOf(pids []int, cl *proc.Proc, startWait, stopWait time.Duration) (Window, error) {
	var w Window
	if _, err := cl.Expect("start", startWait); err != nil {
		return w, err
	}
	c0, err := cpuTicks(pids)
	if err != nil {
		return w, err
	}
	m0 := proc.BusyTicks()
	if w.Stop, err = cl.Expect("stop ", stopWait); err != nil {
		return w, err
	}
	c1, err := cpuTicks(pids)
	if err != nil {
		return w, err
	}
	m1 := proc.BusyTicks()
	w.ServerCPU = float64(c1-c0) / c.Clk
	w.busy = float64(m1-m0) / c.Clk
	return w, nil
}

// cpuTicks sums the user+system clock ticks of the processes pids.
func cpuTicks(pids []int) (int64, error) {
	var sum int64
	for _, p := range pids {
		t, err := proc.CPUTicks(p)
		if err != nil {
			return 0, fmt.Errorf("reading the CPU time of process %d: %w", p, err)
		}
		sum += t
	}
	return sum, nil
}

// Finish reads the stop line into args by format (as fmt.Sscanf does) and waits up to wait
// for the client to exit by itself.
func (w Window) Finish(cl *proc.Proc, wait time.Duration, format string, args ...any) error {
	if _, err := fmt.Sscanf(w.Stop, format, args...); err != nil {
		return fmt.Errorf("load printed %q: %w", w.Stop, err)
	}
	if err := cl.Wait(wait); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

// Load is how busy the cores were in the window, given its length and the client's own CPU
// seconds in it (both from the stop line).
func (w Window) Load(secs, clientCPU float64) Load {
	other := max(0, w.busy-w.ServerCPU-clientCPU)
	return Load{Server: w.ServerCPU / secs, Client: clientCPU / secs, Other: other / secs}
}

// Quietly runs measure and, while other processes took more than c.MaxOther cores during its
// window, reruns it up to c.Retries times while the runs since began have taken under
// c.Budget, keeping the quietest run. what names the run in the log.
func Quietly[T interface{ Busy() Load }](c *Config, what string, began time.Time, measure func() (T, error)) (T, error) {
	best, err := measure()
	for try := 0; err == nil && best.Busy().Other > c.MaxOther && try < c.Retries && time.Since(began) < c.Budget; try++ {
		log.Printf("%s: other processes took %.2f cores during the window; running it again", what, best.Busy().Other)
		r, err2 := measure()
		if err2 != nil {
			log.Printf("%s rerun: %v", what, err2)
			continue
		}
		if r.Busy().Other < best.Busy().Other {
			best = r
		}
	}
	return best, err
}

// Noisy reports whether other processes took more than c.MaxOther cores in any of rs.
func Noisy[T interface{ Busy() Load }](c *Config, rs []T) bool {
	for _, r := range rs {
		if r.Busy().Other > c.MaxOther {
			return true
		}
	}
	return false
}

// IdleResult is one idle-memory measurement.
type IdleResult struct {
	PerConn float64 // KiB of server RSS per connection
	BaseKiB int64   // server RSS before the connections
	RSSKiB  int64   // server RSS with them
}

// Idle measures how much a fresh server's RSS grows per connection while a load client holds
// conns connections: it reads the server's RSS, starts the client with start (which may read
// the lines the client prints before "open N"), waits for "open N" and for the RSS to settle,
// reads it again, then tells the client to stop and checks that the server dropped none.
func (c *Config) Idle(srv *Server, conns int, start func() (*proc.Proc, error)) (IdleResult, error) {
	var r IdleResult
	time.Sleep(300 * time.Millisecond)
	base, err := proc.RSSKiB(srv.PID())
	if err != nil {
		return r, err
	}
	cl, err := start()
	if err != nil {
		return r, err
	}
	defer cl.Kill()
	open, err := cl.Expect("open ", 3*time.Minute)
	if err != nil {
		return r, err
	}
	if want := fmt.Sprintf("open %d", conns); open != want {
		// The RSS is divided by conns: fewer connections would read as less memory each.
		return r, fmt.Errorf("load printed %q, want %q", open, want)
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
	return IdleResult{PerConn: float64(rss-base) / float64(conns), BaseKiB: base, RSSKiB: rss}, nil
}
