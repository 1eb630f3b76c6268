package wsraw

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// Counter is one connection's count of messages, alone on its cache line so that
// connections counting at once do not slow each other.
type Counter struct {
	atomic.Int64
	_ [56]byte
}

// Load is a measured run over open connections, for [Run].
type Load struct {
	// Warmup is how long the connections run before the window opens.
	Warmup time.Duration
	// Duration is the measured window's length.
	Duration time.Duration
	// Count, when above zero, closes the window early once this many messages were counted in
	// it. Zero means no limit.
	Count int64
	// Wire, when not nil, is the connections' byte counter; the window's Up and Down are read
	// from it. Nil leaves them zero.
	Wire *Wire
	// Stop prints the "stop" line from the window. It is called as soon as the window
	// closes, before the connections are: the orchestrator reads the server's CPU time at
	// that line, and the server's work of closing them is not part of the window.
	Stop func(Window)
}

// Window is what the client saw in a measured window.
type Window struct {
	Msgs     int64   // messages counted in it
	Secs     float64 // its length
	CPU      float64 // the client's own user+system seconds in it
	Up, Down int64   // socket bytes written and read in it, from Load.Wire
}

// Run runs loop on each connection, each on a goroutine of its own, counting its messages in
// n, until stop is set. After l.Warmup it prints "start" to stdout, measures a window of
// l.Duration and hands it to l.Stop. The first error of a loop ends the run with that error,
// and so does a loop that returns before stop is set. Run closes the connections (which
// unblocks loops waiting to read) and waits for the loops before it returns; errors after
// stop is set are not reported.
func Run[C interface{ Close() }](cs []C, l Load, loop func(i int, c C, n *Counter, stop *atomic.Bool) error) error {
	counters := make([]Counter, len(cs))
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	errc := make(chan error, len(cs))
	for i, c := range cs {
		wg.Go(func() {
			err := loop(i, c, &counters[i], &stop)
			if err == nil {
				err = errors.New("a connection stopped early")
			}
			if !stop.Load() {
				errc <- err
			}
		})
	}
	end := func(err error) error {
		stop.Store(true)
		for _, c := range cs {
			c.Close()
		}
		wg.Wait()
		return err
	}
	mark := func() Window {
		w := Window{CPU: CPUSeconds()}
		for i := range counters {
			w.Msgs += counters[i].Load()
		}
		if l.Wire != nil {
			w.Up, w.Down = l.Wire.Up.Load(), l.Wire.Down.Load()
		}
		return w
	}

	select {
	case err := <-errc:
		return end(err)
	case <-time.After(l.Warmup):
	}
	w0, t0 := mark(), time.Now()
	fmt.Println("start")
	window := time.NewTimer(l.Duration)
	defer window.Stop()
	var tick <-chan time.Time // checks Count, when there is one
	if l.Count > 0 {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case err := <-errc:
			return end(err)
		case <-window.C:
			break wait
		case <-tick:
			if mark().Msgs-w0.Msgs >= l.Count {
				break wait
			}
		}
	}
	w1, t1 := mark(), time.Now()
	l.Stop(Window{
		Msgs: w1.Msgs - w0.Msgs,
		Secs: t1.Sub(t0).Seconds(),
		CPU:  w1.CPU - w0.CPU,
		Up:   w1.Up - w0.Up,
		Down: w1.Down - w0.Down,
	})
	return end(nil)
}

// CPUSeconds is this process's user+system time so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// Main is a load client's main after its flags are parsed: it raises the limit on open files,
// runs the mode named mode, and on an error prints "load: ERROR" to stderr and exits 1.
func Main(mode string, modes map[string]func() error) {
	proc.RaiseNoFile()
	run, ok := modes[mode]
	err := fmt.Errorf("unknown -mode %q", mode)
	if ok {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
