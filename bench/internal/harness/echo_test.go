package harness

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// standIns returns a Config whose binaries are in a temporary folder, and a stand-in server
// started with it: a shell running script after its "listening" line, killed at the end.
func standIns(t *testing.T, script string) (*Config, *Server) {
	t.Helper()
	c := &Config{ServerCPU: "0", ClientCPU: "0", Clk: 100, BinDir: t.TempDir()}
	srv, err := c.StartServer("server", "/bin/sh", "-c", "echo listening 127.0.0.1:1; "+script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	return c, srv
}

// fakeLoad writes a load client that checks its arguments, then prints the window's lines.
func fakeLoad(t *testing.T, c *Config, script string) {
	t.Helper()
	if err := os.WriteFile(c.Bin("load"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestRunEcho runs the echo window with stand-ins for the server and the load client: the
// server's CPU time is read from the server's own process (one that spins has some, one that
// sleeps none), and the rates come from the client's stop line.
func TestRunEcho(t *testing.T) {
	script := `test "$*" = "-mode echo -addr 127.0.0.1:1 -conns 3 -size 64 -depth 2 -warmup 10ms -duration 300ms" || { echo "args: $*" >&2; exit 1; }
echo start
sleep 0.3
echo "stop msgs=6000 secs=0.300000 cpu=0.030000"
`
	for _, server := range []string{"exec sleep 30", "while :; do :; done"} {
		c, srv := standIns(t, server)
		fakeLoad(t, c, script)
		e, err := c.RunEcho(srv, 3, 64, 2, 10*time.Millisecond, 300*time.Millisecond)
		srv.Kill()
		if err != nil {
			t.Fatalf("%s: %v", server, err)
		}
		if !near(e.Rate(), 20000) || e.Msgs != 6000 || !near(e.ClientCPU, 0.03) {
			t.Errorf("%s: %d msgs, %v msgs/s, client %v s; want 6000, 20000, 0.03", server, e.Msgs, e.Rate(), e.ClientCPU)
		}
		spins := strings.HasPrefix(server, "while")
		if spins && e.ServerCPU <= 0 || !spins && e.ServerCPU != 0 {
			t.Errorf("%s: server CPU %v s in the window", server, e.ServerCPU)
		}
	}
}

func TestRunEchoFails(t *testing.T) {
	c, srv := standIns(t, "exec sleep 60")
	for script, want := range map[string]string{
		"echo start; echo 'stop msgs=0 secs=1 cpu=0'\n":         "nothing counted",
		"echo start; echo 'stop reqs=5 secs=1 cpu=0'\n":         "load printed",
		"echo start; echo 'stop what'\n":                        "load printed",
		"echo 'load: refused' >&2; exit 1\n":                    "exited before",
		"echo start; echo 'stop msgs=5 secs=1 cpu=0'; exit 2\n": "exit status 2",
	} {
		fakeLoad(t, c, script)
		if _, err := c.RunEcho(srv, 1, 8, 1, 0, time.Millisecond); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load %q: error %v, want %q", script, err, want)
		}
	}
}

func TestCounts(t *testing.T) {
	c, srv := standIns(t, "exec sleep 60")
	fakeLoad(t, c, "echo start; echo 'stop reqs=4000 secs=2 cpu=0.5'\n")
	cl, err := c.StartClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Kill()
	e, err := c.Counts(srv, cl, "reqs", time.Minute, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !near(e.Rate(), 2000) || !near(e.ClientPerMsg(), 125) || e.ServerPerMsg() != 0 {
		t.Errorf("%v reqs/s, client %v µs/req, server %v µs/req; want 2000, 125, 0", e.Rate(), e.ClientPerMsg(), e.ServerPerMsg())
	}
}

// TestIdle measures idle memory with stand-ins: a server whose RSS does not move, and load
// clients that hold their connections, open fewer than asked, or see some dropped.
func TestIdle(t *testing.T) {
	c, srv := standIns(t, "exec sleep 60")
	for script, want := range map[string]string{
		"echo 'open 10'; read l; test \"$l\" = stop && echo 'closed dropped=0'\n": "",
		"echo 'open 9'; read l; echo 'closed dropped=0'\n":                        `want "open 10"`,
		"echo 'open 10'; read l; echo 'closed dropped=2'\n":                       "dropped idle connections",
	} {
		fakeLoad(t, c, script)
		r, err := c.Idle(srv, 10, func() (*proc.Proc, error) { return c.StartClient("-mode", "idle") })
		switch {
		case want == "" && err != nil:
			t.Errorf("load %q: %v", script, err)
		case want == "" && (r.BaseKiB <= 0 || r.PerConn != float64(r.RSSKiB-r.BaseKiB)/10):
			t.Errorf("load %q: %+v", script, r)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("load %q: error %v, want %q", script, err, want)
		}
	}
}
