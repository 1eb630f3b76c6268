// Command sse compares herald's EventSource with the servers of r3labs/sse and tmaxmax/go-sse
// in one run: many concurrent streams, the server's memory (RSS) per stream, and the fan-out
// of one event to all of them (time until the last client has it, events delivered per
// second), then a burst of events.
//
//	cd bench && go run ./sse [-n 10000] [-fanouts 20] [-burst 50] [-impl herald,r3labs,go-sse]
//	                         [-quiet 0.2] [-quiet-wait 5s] [-max-other 0.25] [-retries 3]
//
// Each server runs in a child process (this program with -serve NAME), so that its RSS is its
// own; the clients are raw TCP connections in this process that read the event stream. Every
// server is used as its documentation shows, with its defaults. Everything stays on loopback.
//
// On a shared machine, each fan-out waits until other processes use under -quiet cores, and
// one during which they used over -max-other cores (the machine's busy time less the server's
// and this program's) is run again, at most -retries times; the report counts both.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	r3 "github.com/r3labs/sse/v2"
	gosse "github.com/tmaxmax/go-sse"

	"github.com/herald-go/herald/bench/internal/harness"
	"github.com/herald-go/herald/bench/internal/proc"
	"github.com/herald-go/herald/eventsource"
)

func main() {
	serve := flag.String("serve", "", "run the named server (child mode)")
	n := flag.Int("n", 10000, "concurrent streams")
	fanouts := flag.Int("fanouts", 20, "single events fanned out to every stream, one at a time")
	burst := flag.Int("burst", 50, "events published back to back to every stream")
	impls := flag.String("impl", "herald,r3labs,go-sse", "servers to compare, in order")
	flag.Float64Var(&quiet.cores, "quiet", 0.2, "before each fan-out, wait until other processes use fewer cores than this")
	flag.DurationVar(&quiet.wait, "quiet-wait", 5*time.Second, "how long to wait for that at most")
	flag.Float64Var(&quiet.maxOther, "max-other", 0.25, "rerun a fan-out during which other processes used more cores than this")
	flag.IntVar(&quiet.retries, "retries", 3, "how many times to rerun one fan-out at most")
	flag.Parse()
	raiseFileLimit()
	if *serve != "" {
		if err := runServer(*serve); err != nil {
			log.Fatal(err)
		}
		return
	}
	var results []result
	for _, name := range strings.Split(*impls, ",") {
		r, err := measure(name, *n, *fanouts, *burst)
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		results = append(results, r)
		runtime.GC()
	}
	report(results, *n, *fanouts, *burst)
}

// raiseFileLimit lifts the open-file limit as far as allowed: each stream is a descriptor.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		if l.Max < 1<<17 {
			l.Max, l.Cur = 1<<17, 1<<17
		}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
			l.Cur = l.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		}
	}
}

// ---- servers (child mode) ----

// runServer serves one implementation: GET /stream is the event stream, POST /publish?data=X
// publishes one event with data X to every stream, POST /gc returns freed memory to the OS.
func runServer(name string) error {
	var stream http.Handler
	var publish func(data string)
	switch name {
	case "herald":
		s := eventsource.NewStream(nil)
		stream = &eventsource.Handler{Accept: func(es *eventsource.EventSource) { _ = s.Subscribe(es) }}
		publish = func(data string) { _, _ = s.Publish(data, eventsource.Event{}) }
	case "r3labs":
		s := r3.New()
		s.CreateStream("bench")
		stream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			q.Set("stream", "bench")
			r.URL.RawQuery = q.Encode()
			s.ServeHTTP(w, r)
		})
		publish = func(data string) { s.Publish("bench", &r3.Event{Data: []byte(data)}) }
	case "go-sse":
		s := &gosse.Server{}
		stream = s
		publish = func(data string) {
			m := &gosse.Message{}
			m.AppendData(data)
			_ = s.Publish(m)
		}
	default:
		return fmt.Errorf("unknown server %q", name)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /stream", stream)
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		for _, d := range r.URL.Query()["data"] {
			publish(d)
		}
	})
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		// Twice: a GC shrinks the stacks of goroutines that use little of theirs, and the
		// second returns what the first freed.
		runtime.GC()
		debug.FreeOSMemory()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "%s: heap in use %d KiB, stacks %d KiB, goroutines %d, sys %d KiB\n", name,
			m.HeapInuse>>10, m.StackInuse>>10, runtime.NumGoroutine(), m.Sys>>10)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// ---- measurement ----

// quiet keeps other work on a shared machine out of the measured windows.
var quiet struct {
	cores    float64
	wait     time.Duration
	maxOther float64
	retries  int
}

type result struct {
	name       string
	rssBase    int64           // server RSS before any stream, bytes
	rssStreams int64           // server RSS with every stream open, bytes
	perStream  float64         // (rssStreams - rssBase) / n
	fanout     []time.Duration // per single event: until the last stream had it
	serverCPU  time.Duration   // the server's CPU time over the fan-outs kept
	clientCPU  time.Duration   // the clients' (this program's) over the same
	rerun      int             // fan-outs run again because other processes were busy
	disturbed  int             // fan-outs kept although other processes were busy
	burst      time.Duration   // until every stream had every burst event
	openTime   time.Duration
}

func measure(name string, n, fanouts, burst int) (result, error) {
	res := result{name: name}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(self, "-serve", name)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive this program
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return res, fmt.Errorf("server did not start: %w", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	post := func(path string) error {
		resp, err := hc.Post("http://"+addr+path, "text/plain", nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %s", path, resp.Status)
		}
		return nil
	}

	if err := post("/gc"); err != nil {
		return res, err
	}
	if res.rssBase, err = rssBytes(cmd.Process.Pid); err != nil {
		return res, err
	}

	// Open every stream, at most 256 dials at a time.
	clients := newClients(n)
	start := time.Now()
	sem := make(chan struct{}, 256)
	errs := make(chan error, n)
	var opened sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		opened.Add(1)
		go func() {
			defer func() { <-sem }()
			errs <- clients.open(i, addr)
			opened.Done()
		}()
	}
	opened.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			clients.closeAll()
			return res, fmt.Errorf("opening streams: %w", err)
		}
	}
	defer clients.closeAll()
	// Every stream is open once it has received a warm-up event. A stream subscribes after
	// its request has been read, which can be after a warm-up event went out: one is published
	// every second until one reaches every stream (so the time is to within a second).
	for try := 1; ; try++ {
		key := "warm" + strconv.Itoa(try)
		done := clients.expect(key, 1)
		if err := post("/publish?data=" + key); err != nil {
			return res, err
		}
		select {
		case <-done:
		case <-time.After(time.Second):
			if try < 60 {
				continue
			}
			return res, fmt.Errorf("only %d of %d streams are open after a minute", clients.count(), n)
		}
		break
	}
	res.openTime = time.Since(start)
	time.Sleep(time.Second)
	if err := post("/gc"); err != nil {
		return res, err
	}
	time.Sleep(200 * time.Millisecond)
	if res.rssStreams, err = rssBytes(cmd.Process.Pid); err != nil {
		return res, err
	}
	res.perStream = float64(res.rssStreams-res.rssBase) / float64(n)

	// Fan-out: one event at a time, each in a window that other processes left alone (the
	// machine's busy time, less the server's and this program's, tells), or run again.
	clk := proc.ClockTicks()
	var srvTicks, ownTicks int64
	for k := 1; k <= fanouts; k++ {
		for try := 0; ; try++ {
			proc.WaitQuiet(quiet.cores, quiet.wait, clk)
			key := "fan" + strconv.Itoa(k) + "." + strconv.Itoa(try)
			done := clients.expect(key, 1)
			busy0, srv0, own0 := proc.BusyTicks(), cpuTicks(cmd.Process.Pid), cpuTicks(os.Getpid())
			t0 := time.Now()
			if err := post("/publish?data=" + key); err != nil {
				return res, err
			}
			var took time.Duration
			select {
			case t := <-done:
				took = t.Sub(t0)
			case <-time.After(60 * time.Second):
				return res, fmt.Errorf("fan-out %d: only %d of %d streams got it within 60s", k, clients.count(), n)
			}
			if d := clients.duplicates(); d > 0 {
				return res, fmt.Errorf("fan-out %d: %d streams got the event twice", k, d)
			}
			busy1, srv1, own1 := proc.BusyTicks(), cpuTicks(cmd.Process.Pid), cpuTicks(os.Getpid())
			other := float64((busy1-busy0)-(srv1-srv0)-(own1-own0)) / clk / time.Since(t0).Seconds()
			time.Sleep(50 * time.Millisecond)
			if other > quiet.maxOther {
				if try < quiet.retries {
					res.rerun++
					continue
				}
				res.disturbed++
			}
			res.fanout = append(res.fanout, took)
			srvTicks += srv1 - srv0
			ownTicks += own1 - own0
			break
		}
	}
	res.serverCPU = time.Duration(float64(srvTicks) / clk * float64(time.Second))
	res.clientCPU = time.Duration(float64(ownTicks) / clk * float64(time.Second))

	// Burst: events back to back (one request carries them all).
	if burst > 0 {
		proc.WaitQuiet(quiet.cores, quiet.wait, clk)
		q := make([]string, burst)
		for i := range q {
			q[i] = "data=burst"
		}
		done := clients.expect("burst", burst)
		t0 := time.Now()
		if err := post("/publish?" + strings.Join(q, "&")); err != nil {
			return res, err
		}
		select {
		case t := <-done:
			res.burst = t.Sub(t0)
		case <-time.After(120 * time.Second):
			return res, fmt.Errorf("burst: %d of %d events delivered within 120s", clients.count(), n*burst)
		}
		if d := clients.duplicates(); d > 0 {
			return res, fmt.Errorf("burst: %d events past the %d each stream was sent", d, burst)
		}
	}
	return res, nil
}

// cpuTicks returns a process's CPU time in clock ticks, 0 when it cannot be read.
func cpuTicks(pid int) int64 {
	t, _ := proc.CPUTicks(pid)
	return t
}

// rssBytes returns a process's resident set size in bytes.
func rssBytes(pid int) (int64, error) {
	kib, err := proc.RSSKiB(pid)
	return kib << 10, err
}

// clients are the streams' readers. Each counts the events it receives by data; when every
// stream has had an event as many times as expected (a stream's extra copies count for no
// other), the waiter is told the time. The
// readers share no lock, so that the clients' own cost stays small and the same for every
// server.
type clients struct {
	conns []net.Conn
	cur   atomic.Pointer[expectation]
}

// expectation is what the readers count: deliveries of events with data key.
type expectation struct {
	key   string
	times int32          // deliveries expected per stream
	want  int64          // deliveries expected in all: streams × times
	per   []atomic.Int32 // deliveries per stream
	got   atomic.Int64   // deliveries counted, at most times per stream
	extra atomic.Int64   // deliveries past times on a stream: a server sending an event twice
	done  chan time.Time
}

func newClients(n int) *clients { return &clients{conns: make([]net.Conn, n)} }

// expect arms the counter for events with data key, each stream receiving it times times.
func (c *clients) expect(key string, times int) <-chan time.Time {
	e := &expectation{key: key, times: int32(times), want: int64(len(c.conns) * times),
		per: make([]atomic.Int32, len(c.conns)), done: make(chan time.Time, 1)}
	c.cur.Store(e)
	return e.done
}

// count returns the deliveries counted so far for the expected key.
func (c *clients) count() int64 { return c.cur.Load().got.Load() }

// duplicates returns how many deliveries of the expected key came to a stream that already
// had it as many times as expected.
func (c *clients) duplicates() int64 { return c.cur.Load().extra.Load() }

// delivered counts an event with data on stream i.
func (c *clients) delivered(i int, data []byte) {
	e := c.cur.Load()
	if e == nil || string(data) != e.key {
		return
	}
	if e.per[i].Add(1) > e.times {
		e.extra.Add(1)
		return
	}
	if e.got.Add(1) == e.want {
		e.done <- time.Now()
	}
}

// open connects stream i and sends its request; a goroutine then reads the stream until the
// connection ends. (go-sse sends the response headers only with the first event: a stream
// counts as open once it has received the warm-up event.)
func (c *clients) open(i int, addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	c.conns[i] = conn
	_, err = io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: "+addr+"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n")
	if err != nil {
		return err
	}
	r := bufio.NewReaderSize(conn, 1024)
	go c.read(i, r)
	return nil
}

// read reads stream i's "data: X" lines (inside chunked framing, which it skips) until the
// end.
func (c *clients) read(i int, r *bufio.Reader) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return
		}
		if rest, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			c.delivered(i, bytes.TrimRight(rest, "\r\n"))
		}
	}
}

func (c *clients) closeAll() {
	for _, conn := range c.conns {
		if conn != nil {
			_ = conn.Close()
		}
	}
}

// ---- report ----

func report(rs []result, n, fanouts, burst int) {
	fmt.Printf("\nSSE servers, %d concurrent streams over HTTP/1.1 on loopback, %d single-event fan-outs, a burst of %d events; GOMAXPROCS=%d, %s\n\n",
		n, fanouts, burst, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Println("| server | RSS per stream | fan-out p50 (last client has it) | fan-out p90 | events/s (fan-out p50) | CPU per fan-out: server / clients | burst events/s | all streams open after | fan-outs rerun / disturbed |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		p50, p90 := percentile(r.fanout, 50), percentile(r.fanout, 90)
		burstRate := 0.0
		if r.burst > 0 {
			burstRate = float64(n*burst) / r.burst.Seconds()
		}
		var cpu, ccpu time.Duration
		if len(r.fanout) > 0 {
			cpu, ccpu = r.serverCPU/time.Duration(len(r.fanout)), r.clientCPU/time.Duration(len(r.fanout))
		}
		fmt.Printf("| %s | %.1f KiB | %v | %v | %.0f | %v / %v | %.0f | %v | %d / %d |\n", r.name, r.perStream/1024,
			p50.Round(10*time.Microsecond), p90.Round(10*time.Microsecond), float64(n)/p50.Seconds(),
			cpu.Round(time.Millisecond), ccpu.Round(time.Millisecond), burstRate, r.openTime.Round(time.Millisecond), r.rerun, r.disturbed)
	}
	if len(rs) > 1 && rs[0].name == "herald" {
		fmt.Println()
		h := rs[0]
		for _, r := range rs[1:] {
			fmt.Printf("%s vs herald: memory per stream ×%.2f, fan-out p50 ×%.2f, burst ×%.2f (above 1: herald is better)\n", r.name,
				r.perStream/h.perStream, float64(percentile(r.fanout, 50))/float64(percentile(h.fanout, 50)), float64(r.burst)/float64(h.burst))
		}
	}
}

// percentile returns the p-th percentile of ds, interpolating between neighbours as the other
// benchmarks do (harness.Quantile): of 20 fan-outs, p50 is the mean of the 10th and 11th
// fastest, not the 10th.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return time.Duration(harness.Quantile(s, float64(p)/100))
}
