package herald_test

// What the nes peer tests (nes_peers_test.go) and the differential wire test
// (nes_differential_test.go) share: starting a nes server configured like examples/nes, either
// the reference (hapi + @hapi/nes, internal/testpeers/hapi-nes-server.js) or herald's own demo.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/internal/testpeers"
)

// nesHeartbeat is the heartbeat a server under test is started with.
type nesHeartbeat struct{ interval, timeout time.Duration }

var (
	// nesDefaultHeartbeat is both servers' default.
	nesDefaultHeartbeat = nesHeartbeat{15 * time.Second, 5 * time.Second}
	// nesFastHeartbeat keeps the heartbeat scenario short: several intervals in about 3 s, with room for a loaded machine.
	nesFastHeartbeat = nesHeartbeat{time.Second, 500 * time.Millisecond}
)

// nesStartTimeout bounds how long a server under test may take to print its address.
const nesStartTimeout = 30 * time.Second

// nesImpl is one nes server implementation under test.
type nesImpl struct {
	name string
	// start starts a server with the given heartbeat, stopped when the test ends, and returns
	// its WebSocket URL (ws://127.0.0.1:PORT).
	start func(t *testing.T, hb nesHeartbeat) string
}

// hapiNes is the reference: hapi 21 + @hapi/nes 14.0.1, configured like examples/nes.
var hapiNes = nesImpl{name: "hapi", start: startHapiNes}

// heraldNes is herald's examples/nes, built once per test that asks for it.
func heraldNes(t *testing.T) nesImpl {
	bin := buildHeraldNes(t)
	return nesImpl{name: "herald", start: func(t *testing.T, hb nesHeartbeat) string {
		return startHeraldNes(t, bin, hb)
	}}
}

func startHapiNes(t *testing.T, hb nesHeartbeat) string {
	t.Helper()
	_, addr := testpeers.Listen(t, "hapi-nes-server.js",
		strconv.FormatInt(hb.interval.Milliseconds(), 10), strconv.FormatInt(hb.timeout.Milliseconds(), 10))
	return "ws://" + addr
}

// buildHeraldNes builds examples/nes into a temporary folder (with the race detector when the
// test binary has it) and returns the binary's path. It skips the test while examples/nes does
// not exist yet.
func buildHeraldNes(t *testing.T) string {
	t.Helper()
	if !heraldNesExists() {
		t.Skip("herald's examples/nes does not exist yet: only the reference runs")
	}
	bin := filepath.Join(t.TempDir(), "nes")
	args := []string{"build", "-o", bin}
	if nesRaceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./examples/nes")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/nes: %v\n%s", err, out)
	}
	return bin
}

// heraldNesExists reports whether herald's examples/nes has landed.
func heraldNesExists() bool {
	_, err := os.Stat(filepath.Join("examples", "nes", "main.go"))
	return err == nil
}

// nesRaceEnabled reports whether this test binary was built with -race.
func nesRaceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// startHeraldNes runs the examples/nes binary on a free port until the test ends. Its standard
// error goes to the test log, and a data race reported there fails the test.
func startHeraldNes(t *testing.T, bin string, hb nesHeartbeat) string {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0",
		"-heartbeat-interval", hb.interval.String(), "-heartbeat-timeout", hb.timeout.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &nesRaceWatcher{t: t}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start examples/nes: %v", err)
	}
	lines := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // only the first line matters
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
		if stderr.raced() {
			t.Errorf("examples/nes reported a data race (see the log above)")
		}
	})
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, "listening on http://")
		if !ok || !found {
			t.Fatalf("examples/nes printed %q, want `listening on http://ADDR`", line)
		}
		return "ws://" + addr
	case <-time.After(nesStartTimeout):
		t.Fatalf("examples/nes printed nothing within %v", nesStartTimeout)
	}
	return ""
}

// nesRaceWatcher logs a program's standard error and remembers whether it reported a data race.
type nesRaceWatcher struct {
	t    *testing.T
	mu   sync.Mutex
	race bool
}

func (w *nesRaceWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(b), "WARNING: DATA RACE") {
		w.race = true
	}
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log("examples/nes: " + l)
	}
	return len(b), nil
}

func (w *nesRaceWatcher) raced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.race
}
