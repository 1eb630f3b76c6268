package harness

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// Publishes is what a publishing load client (broadcast/load, nes/load in mode fanout) printed
// about its measured publishes, and what the server did meanwhile.
type Publishes struct {
	Window
	Pubs      int64     // measured publishes (the stop line's pubs)
	Secs      float64   // the window's length (the stop line's secs)
	ClientCPU float64   // the client's own CPU seconds in it (the stop line's cpu)
	Millis    []float64 // each publish's time to its last receiver in ms (the lat line), sorted
}

// Publishes follows a publishing load client to its end: "open N" (5 minutes at most), the
// measured window (5 minutes to start, 5 to stop), the "lat µs µs ..." line (30 s), then its
// exit (up to exitWait). It fails when the lines do not parse or the latencies are not one
// per publish.
func (c *Config) Publishes(srv *Server, cl *proc.Proc, exitWait time.Duration) (Publishes, error) {
	var p Publishes
	if _, err := cl.Expect("open ", 5*time.Minute); err != nil {
		return p, err
	}
	w, err := c.Window(srv, cl, 5*time.Minute, 5*time.Minute)
	if err != nil {
		return p, err
	}
	p.Window = w
	lat, err := cl.Expect("lat", 30*time.Second)
	if err != nil {
		return p, err
	}
	if err := w.Finish(cl, exitWait, "stop pubs=%d secs=%g cpu=%g", &p.Pubs, &p.Secs, &p.ClientCPU); err != nil {
		return p, err
	}
	for f := range strings.FieldsSeq(strings.TrimPrefix(lat, "lat")) {
		us, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return p, fmt.Errorf("load printed %.100q: %w", lat, err)
		}
		p.Millis = append(p.Millis, us/1e3)
	}
	if p.Pubs <= 0 || p.Secs <= 0 || len(p.Millis) != int(p.Pubs) {
		return p, fmt.Errorf("load printed %q and %d latencies", w.Stop, len(p.Millis))
	}
	slices.Sort(p.Millis)
	return p, nil
}

// PerPub returns seconds per publish in ms.
func (p Publishes) PerPub(seconds float64) float64 { return seconds / float64(p.Pubs) * 1e3 }

// Load is how busy the cores were in the window.
func (p Publishes) Load() Load { return p.Window.Load(p.Secs, p.ClientCPU) }
