package proc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStatTicks(t *testing.T) {
	// A name with spaces and parentheses: fields count from its last ')'. utime is 1234,
	// stime 56 (fields 14 and 15); cutime and cstime (77, 88) are the children's, not its.
	stat := "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 77 88 20 0 3 0 100 " +
		"123456 789 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	got, err := statTicks([]byte(stat))
	if err != nil || got != 1290 {
		t.Errorf("statTicks = %d, %v; want 1290", got, err)
	}
	for _, bad := range []string{"", "4242 no parenthesis", "4242 (x) S 1 2 3"} {
		if _, err := statTicks([]byte(bad)); err == nil {
			t.Errorf("statTicks(%q) took it", bad)
		}
	}
}

func TestBusyTicks(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  100 2 30 5000 40 5 6 7 50 3\ncpu0 50 1 15 2500 20 2 3 3 25 1\nintr 1\n"
	if got := busyTicks([]byte(stat)); got != 100+2+30+5+6+7 {
		t.Errorf("busyTicks = %d, want %d (all but idle and iowait, guest counted once)", got, 100+2+30+5+6+7)
	}
	if got := busyTicks([]byte("intr 1\n")); got != 0 {
		t.Errorf("busyTicks without a cpu line = %d", got)
	}
}

func TestOwnProcess(t *testing.T) {
	c0, err := CPUTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c1, err := CPUTicks(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if c1 > c0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU ticks stayed at %d over 5 s of spinning", c0)
		}
		for i := 0; i < 1e6; i++ {
			_ = strings.Repeat("x", i%3)
		}
	}
	if rss, err := RSSKiB(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("RSSKiB = %d, %v", rss, err)
	}
}

func TestStartExpectKill(t *testing.T) {
	p, err := Start("sh", "0", "/bin/sh", "-c", "echo noise; echo listening 127.0.0.1:1; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Expect("listening ", 10*time.Second)
	if err != nil || l != "listening 127.0.0.1:1" {
		t.Fatalf("Expect = %q, %v", l, err)
	}
	// taskset execs the program (and sh execs sleep), so the pid whose CPU time is read is
	// the program's own.
	comm := ""
	for deadline := time.Now().Add(5 * time.Second); comm != "sleep" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/comm")
		if err != nil {
			t.Fatal(err)
		}
		comm = strings.TrimSpace(string(b))
	}
	if comm != "sleep" {
		t.Fatalf("pid %d runs %q, not the program", p.PID(), comm)
	}
	p.Kill()
	live.Lock()
	n := len(live.procs)
	live.Unlock()
	if n != 0 {
		t.Errorf("%d processes still tracked after Kill", n)
	}
	if _, err := p.Expect("anything", time.Second); err == nil {
		t.Error("Expect on a killed process succeeded")
	}
}

func TestExpectExited(t *testing.T) {
	p, err := Start("sh", "0", "/bin/sh", "-c", "echo hello; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if _, err := p.Expect("start", 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("Expect on an exited process: %v, want it to say it exited", err)
	}
}

// TestKillForked checks that Kill returns when the process has started another that still
// holds its standard output.
func TestKillForked(t *testing.T) {
	p, err := Start("sh", "0", "/bin/sh", "-c", "sleep 30 & echo child $!; wait")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Expect("child ", 10*time.Second)
	if err != nil {
		p.Kill()
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimPrefix(l, "child "))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(child, syscall.SIGKILL)
	killed := make(chan struct{})
	go func() { p.Kill(); close(killed) }()
	select {
	case <-killed:
	case <-time.After(20 * time.Second):
		t.Fatal("Kill still waiting after 20 s")
	}
}
