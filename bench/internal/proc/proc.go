// Package proc runs the benchmarks' child processes (servers and load clients) pinned to
// cores, reads their output line by line, and reads what /proc says about them. It is shared
// by the orchestrators in cmd/bench, deflate and nes.
package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process pinned to cores with taskset, with its stdout read line by line.
type Proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string
	// Stdin is the process's standard input.
	Stdin io.WriteCloser
	done  chan struct{} // closed when the process has been waited for
	err   error         // the Wait error, set before done is closed
	out   io.ReadCloser // the read end of its stdout
}

// live tracks every child so that all of them die with the orchestrator, on error and on a
// signal as well as at the end.
var live struct {
	sync.Mutex
	procs map[*Proc]bool
}

// Nice, when not zero, is the nice value children start at.
var Nice int

// Start runs bin with args pinned to cpus (and at Nice). Its stderr goes to ours.
func Start(name, cpus, bin string, args ...string) (*Proc, error) {
	argv := append([]string{"taskset", "-c", cpus, bin}, args...)
	if Nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(Nice)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	// nice and taskset exec what follows, so the pid is bin's; Pdeathsig kills it if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &Proc{name: name, cmd: cmd, lines: make(chan string, 16), Stdin: in, done: make(chan struct{}), out: out}
	live.Lock()
	defer live.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if live.procs == nil {
		live.procs = map[*Proc]bool{}
	}
	live.procs[p] = true
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20) // some report lines are long
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Expect waits up to timeout for a line starting with prefix, skipping others, and returns it.
func (p *Proc) Expect(prefix string, timeout time.Duration) (string, error) {
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

// Wait waits up to timeout for the process to exit by itself.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		live.Lock()
		delete(live.procs, p)
		live.Unlock()
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.name, timeout)
	}
}

// Kill kills the process and waits for it. A process it started that still holds its
// standard output (a server that forked) would keep the reader, and so the wait, going: after
// 2 s Kill closes its end of the pipe and waits for the process alone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	go func() {
		for range p.lines { // drain so the reader can reach Wait
		}
	}()
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = p.out.Close()
		<-p.done
	}
	live.Lock()
	delete(live.procs, p)
	live.Unlock()
}

// KillAll kills every child still running.
func KillAll() {
	live.Lock()
	procs := make([]*Proc, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	live.Unlock()
	for _, p := range procs {
		p.Kill()
	}
}

// CPUTicks reads a process's user+system time in clock ticks from /proc/PID/stat (fields 14
// and 15, counted after the parenthesized name). It covers all the process's threads.
func CPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return statTicks(b)
}

// statTicks returns utime + stime from the contents of /proc/PID/stat. The name in parentheses
// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
func statTicks(b []byte) (int64, error) {
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

// RSSKiB reads a process's resident set size (VmRSS) in KiB.
func RSSKiB(pid int) (int64, error) {
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

// BusyTicks reads the machine's busy time on all cores (everything but idle and iowait) from
// /proc/stat, in clock ticks.
func BusyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return busyTicks(b)
}

// busyTicks sums the first line of /proc/stat ("cpu  user nice system idle iowait irq softirq
// steal guest guest_nice") but idle and iowait; guest time is already counted in user.
func busyTicks(b []byte) int64 {
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

// ClockTicks returns the kernel's clock ticks per second (getconf CLK_TCK).
func ClockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// RaiseNoFile raises the soft limit on open files to the hard limit, so that 10,000
// connections fit; children inherit it. Go does this itself at startup since 1.19; doing it
// here says so and covers the case where the hard limit was raised later. The orchestrators,
// the servers and the load clients all call it.
func RaiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// SettledRSS samples a process's RSS every 250 ms until the last nine samples (2 s) agree
// within 1%, and returns the last one (or whatever it is after 30 s).
func SettledRSS(pid int) (int64, error) {
	const window = 9 // the READMEs say "stayed within 1% for 2 s": 8 intervals of 250 ms
	var s []int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		v, err := RSSKiB(pid)
		if err != nil {
			return 0, err
		}
		s = append(s, v)
		if len(s) >= window {
			w := s[len(s)-window:]
			lo, hi := w[0], w[0]
			for _, x := range w {
				lo, hi = min(lo, x), max(hi, x)
			}
			if float64(hi-lo) <= 0.01*float64(hi) {
				return v, nil
			}
		}
		if time.Now().After(deadline) {
			log.Printf("RSS of pid %d still moving after 30s; taking the last sample", pid)
			return v, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// WaitQuiet waits, for at most wait, until the rest of the machine uses fewer than maxCores
// cores (clk is ClockTicks()), so that other work does not land in a measured window. It
// lowers the noise on a shared machine; it does not remove it.
func WaitQuiet(maxCores float64, wait time.Duration, clk float64) {
	if maxCores <= 0 || wait <= 0 {
		return
	}
	deadline := time.Now().Add(wait)
	for {
		m0, t0 := BusyTicks(), time.Now()
		time.Sleep(500 * time.Millisecond)
		used := float64(BusyTicks()-m0) / clk / time.Since(t0).Seconds()
		if used < maxCores {
			return
		}
		if time.Now().After(deadline) {
			log.Printf("machine still busy (%.2f cores used by others); running anyway", used)
			return
		}
	}
}

// KillAllOnSignal kills every child and exits when the orchestrator gets SIGINT, SIGTERM or
// SIGHUP, so that no server or client outlives it; then it runs cleanup (such as removing
// the built binaries), which deferred calls would not, as the process exits from here.
func KillAllOnSignal(cleanup ...func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		log.Printf("%v: killing the servers and the client", s)
		KillAll()
		for _, f := range cleanup {
			f()
		}
		os.Exit(1)
	}()
}

// GoVersion returns the Go toolchain's version, for reports.
func GoVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

// CPUModel returns the processor's model name from /proc/cpuinfo, for reports.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// Kernel returns "Linux " and the kernel release, for reports.
func Kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
