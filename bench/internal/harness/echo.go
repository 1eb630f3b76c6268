package harness

import (
	"fmt"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// Echoes is what an echoing load client (cmd/load -mode echo) printed about its measured
// window, and what the server did meanwhile; also what a client counting other things
// (requests: [Config.Counts]) printed.
type Echoes struct {
	Window
	Msgs      int64   // messages echoed (or requests answered) in the window (the stop line's msgs)
	Secs      float64 // the window's length (the stop line's secs)
	ClientCPU float64 // the client's own CPU seconds in it (the stop line's cpu)
}

// Echoes follows an echoing load client started with -warmup warmup and -duration duration to
// its end: the window (30 s more than each to start and to stop), then its exit (20 s). It
// fails when the stop line does not parse or says nothing was echoed.
func (c *Config) Echoes(srv *Server, cl *proc.Proc, warmup, duration time.Duration) (Echoes, error) {
	return c.Counts(srv, cl, "msgs", warmup+30*time.Second, duration+30*time.Second, 20*time.Second)
}

// Counts is [Config.Echoes] for a load client that counts something else (unit: its stop line
// reads "stop UNIT=N secs=S cpu=C", such as "reqs" for nes requests), with its own waits for
// the window's start and stop lines and for its exit.
func (c *Config) Counts(srv *Server, cl *proc.Proc, unit string, startWait, stopWait, exitWait time.Duration) (Echoes, error) {
	var e Echoes
	w, err := c.Window(srv, cl, startWait, stopWait)
	if err != nil {
		return e, err
	}
	e.Window = w
	if err := w.Finish(cl, exitWait, "stop "+unit+"=%d secs=%g cpu=%g", &e.Msgs, &e.Secs, &e.ClientCPU); err != nil {
		return e, err
	}
	if e.Msgs <= 0 || e.Secs <= 0 {
		return e, fmt.Errorf("nothing counted in the window (%q)", w.Stop)
	}
	return e, nil
}

// RunEcho starts the built load client (cmd/load) in mode echo against srv, conns connections
// keeping depth messages of size bytes in flight each, warmup then a window of duration, and
// follows it to its end ([Config.Echoes]). The client is killed if it fails.
func (c *Config) RunEcho(srv *Server, conns, size, depth int, warmup, duration time.Duration) (Echoes, error) {
	cl, err := c.StartClient("-mode", "echo", "-addr", srv.Addr,
		"-conns", fmt.Sprint(conns), "-size", fmt.Sprint(size), "-depth", fmt.Sprint(depth),
		"-warmup", warmup.String(), "-duration", duration.String())
	if err != nil {
		return Echoes{}, err
	}
	defer cl.Kill()
	return c.Echoes(srv, cl, warmup, duration)
}

// Rate returns the messages echoed per second.
func (e Echoes) Rate() float64 { return float64(e.Msgs) / e.Secs }

// ServerPerMsg returns the server's CPU µs per message.
func (e Echoes) ServerPerMsg() float64 { return e.ServerCPU / float64(e.Msgs) * 1e6 }

// ClientPerMsg returns the load client's own CPU µs per message.
func (e Echoes) ClientPerMsg() float64 { return e.ClientCPU / float64(e.Msgs) * 1e6 }

// Load is how busy the cores were in the window.
func (e Echoes) Load() Load { return e.Window.Load(e.Secs, e.ClientCPU) }
