package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process pinned to cores with taskset, with its stdout read
// line by line.
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has been waited for
	err   error         // the Wait error, set before done is closed
}

// procs tracks every child so that all of them die with the orchestrator,
// on error and on a signal as well as at the end.
var procs struct {
	sync.Mutex
	live map[*proc]bool
}

// start runs bin with args pinned to cpus. Its stderr goes to ours: both
// programs print little there.
func start(name, cpus, bin string, args ...string) (*proc, error) {
	cmd := exec.Command("taskset", append([]string{"-c", cpus, bin}, args...)...)
	cmd.Stderr = os.Stderr
	// taskset execs what follows, so the pid is bin's; Pdeathsig kills it if
	// we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 16), stdin: in, done: make(chan struct{})}
	procs.Lock()
	defer procs.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if procs.live == nil {
		procs.live = map[*proc]bool{}
	}
	procs.live[p] = true
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// expect waits up to timeout for a line starting with prefix, skipping
// others, and returns it.
func (p *proc) expect(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s exited before printing %q: %v", p.name, prefix, p.err)
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s: no %q line within %v", p.name, prefix, timeout)
		}
	}
}

// wait waits up to timeout for the process to exit by itself.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		procs.Lock()
		delete(procs.live, p)
		procs.Unlock()
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.name, timeout)
	}
}

// kill kills the process and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	go func() {
		for range p.lines { // drain so the reader can reach Wait
		}
	}()
	<-p.done
	procs.Lock()
	delete(procs.live, p)
	procs.Unlock()
}

// killAll kills every child still running.
func killAll() {
	procs.Lock()
	live := make([]*proc, 0, len(procs.live))
	for p := range procs.live {
		live = append(live, p)
	}
	procs.Unlock()
	for _, p := range live {
		p.kill()
	}
}

// cpuTicks reads a process's user+system time in clock ticks from
// /proc/PID/stat (fields 14 and 15, counted after the parenthesized name).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// rssKiB reads a process's resident set size (VmRSS) in KiB.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// busyTicks reads the machine's busy time on all cores (everything but idle
// and iowait) from /proc/stat, in clock ticks.
func busyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, s := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		busy += v
	}
	return busy
}

// clockTicks returns the kernel's clock ticks per second (getconf CLK_TCK).
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}
