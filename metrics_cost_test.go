package herald_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-go/herald"
	heraldprom "github.com/herald-go/herald/metrics/prometheus"
)

// costServerEnv names the variant a child process serves: "none" or "prometheus".
const costServerEnv = "HERALD_METRICS_COST_SERVER"

// TestMetricsCostServer is the server of BenchmarkMetricsCostNetwork, run in a process of its
// own (the benchmark starts this test binary again with costServerEnv set); it is skipped
// otherwise. It serves nes at / (route "echo", subscription "/feed"), POST /publish?n=N,
// which publishes N messages to /feed, and its metrics at /metrics (empty with variant
// "none"; the benchmark does not read them), until its standard input closes.
func TestMetricsCostServer(t *testing.T) {
	variant := os.Getenv(costServerEnv)
	if variant == "" {
		t.Skip("the server of BenchmarkMetricsCostNetwork")
	}
	opts := &herald.Options{NoFallback: true, Heartbeat: &herald.Heartbeat{Disabled: true}}
	reg := prometheus.NewRegistry()
	if variant == "prometheus" {
		rec, err := heraldprom.New(reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Metrics = rec
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "echo") })
	var srv *herald.Server
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := range n {
			_ = srv.Publish("/feed", map[string]any{"event": "price", "value": 42.5, "i": i}, nil)
		}
	})
	mux.Handle("/metrics", heraldprom.Handler(reg))
	srv = herald.NewServer(app, opts)
	srv.Route("echo", "GET", "/echo")
	srv.Subscription("/feed", nil)
	mux.Handle("/", srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	fmt.Println("listening", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Shutdown(context.Background())
	_ = hs.Close()
}

// costServer is a running TestMetricsCostServer.
type costServer struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string
}

func startCostServer(b *testing.B, variant string) *costServer {
	args := []string{"-test.run=^TestMetricsCostServer$", "-test.count=1"}
	if p := os.Getenv(costServerEnv + "_PROFILE"); p != "" { // the server's CPU profile, per variant
		args = append(args, "-test.cpuprofile="+p+"."+variant)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), costServerEnv+"="+variant)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &costServer{cmd: cmd, stdin: stdin}
	b.Cleanup(s.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "listening ") {
		b.Fatalf("the server said %q (%v)", line, err)
	}
	s.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return s
}

func (s *costServer) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill() // our own child, by its pid
		<-done
	}
}

// cpu returns the server process's CPU time so far (user and system, all threads).
func (s *costServer) cpu(b *testing.B) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat, in clock ticks
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// costConn is a raw nes client.
type costConn struct {
	conn net.Conn
	rw   io.ReadWriter
}

func dialCost(b *testing.B, addr string) *costConn {
	conn, br, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		b.Fatal(err)
	}
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	c := &costConn{conn: conn, rw: struct {
		io.Reader
		io.Writer
	}{rd, conn}}
	b.Cleanup(func() { _ = conn.Close() })
	if err := c.call(`{"type":"hello","id":1,"version":"2"}`); err != nil {
		b.Fatal(err)
	}
	return c
}

// call sends a message and reads the reply.
func (c *costConn) call(msg string) error {
	if err := wsutil.WriteClientText(c.conn, []byte(msg)); err != nil {
		return err
	}
	_, _, err := wsutil.ReadServerData(c.rw)
	return err
}

// BenchmarkMetricsCostNetwork measures what the Prometheus adapter costs the server, with the
// server in a process of its own and real WebSocket connections over loopback: nes requests
// echoed by a handler (32 connections, one request in flight on each) and publications to
// 1,000 subscribers. server-cpu-ns/msg is the server process's CPU time (from /proc, in 10 ms
// ticks: use a long -benchtime) per request, or per delivery.
//
//	go test -run '^$' -bench BenchmarkMetricsCostNetwork -benchtime 5s -count 3 .
//
// HERALD_METRICS_COST_SERVER_PROFILE=/tmp/srv.prof writes the server's CPU profile to
// /tmp/srv.prof.none and /tmp/srv.prof.prometheus (the last run of each), to see what the
// metrics cost among the rest (go tool pprof -top).
func BenchmarkMetricsCostNetwork(b *testing.B) {
	for _, variant := range []string{"none", "prometheus"} {
		b.Run("echo/"+variant, func(b *testing.B) {
			s := startCostServer(b, variant)
			const conns = 32
			cs := make([]*costConn, conns)
			for i := range cs {
				cs[i] = dialCost(b, s.addr)
			}
			var next atomic.Int64
			start := s.cpu(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := c.call(`{"type":"request","id":2,"method":"GET","path":"echo"}`); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(s.cpu(b)-start)/float64(b.N), "server-cpu-ns/msg")
		})
		b.Run("fanout/"+variant, func(b *testing.B) {
			s := startCostServer(b, variant)
			const subscribers = 1000
			var got atomic.Int64
			var wg sync.WaitGroup
			for range subscribers {
				c := dialCost(b, s.addr)
				if err := c.call(`{"type":"sub","id":2,"path":"/feed"}`); err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					for {
						if _, _, err := wsutil.ReadServerData(c.rw); err != nil {
							return
						}
						got.Add(1)
					}
				})
			}
			want := int64(b.N) * subscribers
			start := s.cpu(b)
			b.ResetTimer()
			// In batches of 100 publications, each delivered before the next: the sockets'
			// queues stay far below SendQueueLimit.
			for sent := 0; sent < b.N; {
				n := min(100, b.N-sent)
				res, err := http.Post("http://"+s.addr+"/publish?n="+strconv.Itoa(n), "text/plain", nil)
				if err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				sent += n
				for deadline := time.Now().Add(time.Minute); got.Load() < int64(sent)*subscribers; time.Sleep(100 * time.Microsecond) {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d deliveries", got.Load(), int64(sent)*subscribers)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(s.cpu(b)-start)/float64(want), "server-cpu-ns/msg")
			s.stop()
			wg.Wait()
		})
	}
}
