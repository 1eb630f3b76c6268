//go:build unix

package soak

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// usage is what the process holds at one moment.
type usage struct {
	goroutines int
	heap       uint64 // bytes of live heap objects (HeapAlloc)
	rss        uint64 // bytes, VmRSS
	fds        int
}

func measure() usage {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, rss: rss(), fds: fds()}
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func fds() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es) - 1 // the directory being read
}

// The tolerances of "back to the baseline", after a GC and up to settleGrace.
const (
	settleGrace  = 15 * time.Second
	tolGoroutine = 4
	tolFD        = 4
	tolHeap      = 16 << 20 // live heap, plus tolHeapPerG for each goroutine of the busiest phase so far: the runtime keeps every goroutine descriptor it made, for reuse
	tolHeapPerG  = 1 << 10
	tolRSS       = 256 << 20 // RSS after the heap is returned to the OS: the race detector's shadow memory and the stacks the runtime keeps are not returned promptly
)

// sampler keeps the peaks of a phase.
type sampler struct {
	mu   sync.Mutex
	peak usage
	stop chan struct{}
	done chan struct{}
}

func startSampler() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.take()
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.take()
			}
		}
	}()
	return s
}

func (s *sampler) take() {
	u := usage{goroutines: runtime.NumGoroutine(), rss: rss(), fds: fds()}
	s.mu.Lock()
	s.peak.goroutines = max(s.peak.goroutines, u.goroutines)
	s.peak.rss = max(s.peak.rss, u.rss)
	s.peak.fds = max(s.peak.fds, u.fds)
	s.mu.Unlock()
}

func (s *sampler) finish() usage {
	close(s.stop)
	<-s.done
	s.take()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// settle waits, collecting garbage, for the process to come back within the tolerances of
// base. It returns what it measured last and what is still over.
func settle(base usage, peakGoroutines int) (usage, []string) {
	heapTol := uint64(tolHeap + tolHeapPerG*peakGoroutines)
	deadline := time.Now().Add(settleGrace)
	for {
		runtime.GC()
		debug.FreeOSMemory()
		u := measure()
		var over []string
		if u.goroutines > base.goroutines+tolGoroutine {
			over = append(over, fmt.Sprintf("goroutines %d > baseline %d + %d", u.goroutines, base.goroutines, tolGoroutine))
		}
		if u.fds > base.fds+tolFD {
			over = append(over, fmt.Sprintf("fds %d > baseline %d + %d", u.fds, base.fds, tolFD))
		}
		if u.heap > base.heap+heapTol {
			over = append(over, fmt.Sprintf("heap %s > baseline %s + %s", mib(u.heap), mib(base.heap), mib(heapTol)))
		}
		if u.rss > base.rss+tolRSS && !raceEnabled {
			over = append(over, fmt.Sprintf("RSS %s > baseline %s + %s", mib(u.rss), mib(base.rss), mib(tolRSS)))
		}
		if len(over) == 0 || time.Now().After(deadline) {
			return u, over
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// goroutineDump returns the goroutines grouped by stack, the biggest groups first, cut to n
// bytes: what a leak looks like.
func goroutineDump(n int) string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	s := b.String()
	if len(s) > n {
		s = s[:n] + "\n..."
	}
	return s
}

func mib(b uint64) string { return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20)) }

// row is one line of the table.
type row struct {
	phase     string
	conns     int    // connections opened in the phase
	msgs      int    // publications sent (each to every subscriber of its path)
	delivered int    // deliveries counted by the subscribers
	lost, dup int    // deliveries missing / repeated, within the phase's bounds
	dropped   string // slow or vanished sockets the server dropped, of those it should have
	peak      usage
	final     usage
	dur       time.Duration
	failures  []string
}

func (r *row) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func printTable(w io.Writer, base usage, rows []*row) {
	fmt.Fprintf(w, "baseline: %d goroutines, heap %s, RSS %s, %d fds\n", base.goroutines, mib(base.heap), mib(base.rss), base.fds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tconns\tmsgs\tdelivered\tlost\tdup\tdropped\tgoroutines peak/final\tRSS peak/final\theap final\tfds peak/final\ttime\tverdict\t")
	for _, r := range rows {
		verdict := "ok"
		if len(r.failures) > 0 {
			verdict = "FAIL"
		}
		dropped := r.dropped
		if dropped == "" {
			dropped = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d/%d\t%s/%s\t%s\t%d/%d\t%.1fs\t%s\t\n",
			r.phase, r.conns, r.msgs, r.delivered, r.lost, r.dup, dropped,
			r.peak.goroutines, r.final.goroutines, mib(r.peak.rss), mib(r.final.rss), mib(r.final.heap),
			r.peak.fds, r.final.fds, r.dur.Seconds(), verdict)
	}
	tw.Flush()
	for _, r := range rows {
		for _, f := range r.failures {
			fmt.Fprintf(w, "FAIL %s: %s\n", r.phase, f)
		}
	}
}

// sockstat returns the kernel's TCP line of /proc/net/sockstat (sockets in use, orphans,
// TIME_WAIT): connections this process no longer holds but the kernel still does.
func sockstat() string {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "TCP:") {
			return line
		}
	}
	return ""
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
