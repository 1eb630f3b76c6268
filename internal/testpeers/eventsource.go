package testpeers

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// ESLine is one line printed by eventsource-client.js (Node's eventsource) or
// eventsource-browser.js (Chromium's EventSource): see those scripts.
type ESLine struct {
	Kind     string            `json:"kind"` // browser, response, open, message, error
	N        int               `json:"n"`
	Status   int               `json:"status"`
	Protocol string            `json:"protocol"`
	Headers  map[string]string `json:"headers"`
	Type     string            `json:"type"`
	ID       string            `json:"id"`
	Data     string            `json:"data"`
	Message  string            `json:"message"`
	Version  string            `json:"version"`
}

// StartEventSource runs `node script args...` like Start, but ends it with SIGTERM (so that
// a browser it drives is closed too) before killing it when the test ends.
func StartEventSource(t testing.TB, script string, args ...string) *Proc {
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

// NextES returns the next line the script printed, decoded, failing the test after timeout.
func (p *Proc) NextES(t testing.TB, timeout time.Duration) ESLine {
	t.Helper()
	line := p.Line(t, timeout)
	var l ESLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("peer printed %q: %v", line, err)
	}
	return l
}

// WaitES returns the next line of the given kind, skipping others, failing the test after
// timeout.
func (p *Proc) WaitES(t testing.TB, timeout time.Duration, kind string) ESLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l := p.NextES(t, time.Until(deadline))
		if l.Kind == kind {
			return l
		}
	}
}
