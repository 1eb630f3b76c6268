// Package testpeers starts the real peers that herald's tests run against: Node programs
// (ws, faye-websocket, playwright-core driving Chromium, hapi with @hapi/nes) installed from the
// pinned package.json beside this file by `make peers`. StartNes runs either nes server, the
// reference or herald's demo, configured alike. BuildProgram and StartProgram build and run the
// repository's own programs (examples/...) as processes, as their users would.
//
// When a peer is missing, tests skip, unless HERALD_REQUIRE_PEERS=1 (as `make test` sets), in
// which case they fail: CI must never pass by skipping the peers.
package testpeers

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Dir is the folder holding package.json, node_modules and the peer scripts.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("HERALD_REQUIRE_PEERS") == "1" {
		t.Fatalf("real peer missing: %s (run `make peers`)", what)
	}
	t.Skipf("real peer missing: %s (run `make peers`, or `make test`)", what)
}

// Node returns the path of the node binary, after checking that the pinned packages are
// installed. It skips or fails the test when they are not (see the package doc).
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node")
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "ws")); err != nil {
		missing(t, "node_modules in "+Dir())
	}
	return node
}

// Chromium returns the path of Debian's chromium, skipping or failing the test without it.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium")
	return ""
}

// Proc is a running peer program.
type Proc struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   strings.Builder // everything the program printed, for failure messages
	done  chan struct{}
}

// Start runs `node script args...` in Dir and stops it when the test ends: SIGTERM first
// (so that a browser the script drives is closed too), then a kill after 10 s. The script's
// standard output is read line by line through Line; standard error goes to the test log.
func Start(t testing.TB, script string, args ...string) *Proc {
	t.Helper()
	node := Node(t)
	cmd := exec.Command(node, append([]string{filepath.Join(Dir(), script)}, args...)...)
	cmd.Dir = Dir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: script + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	p := &Proc{cmd: cmd, lines: make(chan string, 4096), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		_ = cmd.Wait()
	})
	return p
}

// Line returns the next line the program printed, failing the test after timeout or when the
// program ends first.
func (p *Proc) Line(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("peer exited early; it printed:\n%s", p.Output())
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("peer printed nothing within %v; it printed:\n%s", timeout, p.Output())
	}
	return ""
}

// Output returns everything the program printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Run runs `node script args...` to completion and returns its standard output. The test fails
// when the program exits non-zero or outlives ctx.
func Run(ctx context.Context, t testing.TB, script string, args ...string) string {
	t.Helper()
	node := Node(t)
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(Dir(), script)}, args...)...)
	cmd.Dir = Dir()
	cmd.Stderr = &testWriter{t: t, prefix: script + ": "}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s", script, args, err, out)
	}
	return string(out)
}

type testWriter struct {
	t      testing.TB
	prefix string
}

func (w *testWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(b), nil
}

var _ io.Writer = (*testWriter)(nil)
