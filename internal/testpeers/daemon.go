package testpeers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file runs the Debian daemons the proxy tests use (squid.go, nginx.go): each in the
// foreground, in its own process group, from a configuration written into its own directory,
// on a free loopback port, for the length of one test.

// daemonStartTimeout bounds the wait for a daemon to accept connections.
const daemonStartTimeout = 20 * time.Second

// sbin returns the path of a program that Debian installs in /usr/sbin, which is not on every
// user's PATH. It skips or fails the test when the program is missing (see the package doc).
func sbin(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	missing(t, name+" (Debian's "+pkg+")")
	return ""
}

// daemonDir makes the directory of one daemon instance: its configuration, pid file, logs and
// temporary files, removed when the test ends. It is a fresh directory under os.TempDir, not
// under t.TempDir: run as root, squid and nginx's workers switch to an unprivileged user
// (owner, when it exists), who must reach the directory, and t.TempDir's parent is private.
// The directory is given to owner when running as root.
func daemonDir(t testing.TB, name, owner string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "herald-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && owner != "" {
		if u, err := user.Lookup(owner); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			if err := os.Chown(dir, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedAddr returns a loopback HOST:PORT where nothing listens: a port that was free a moment
// ago, for a test of what a program or client does when its peer is not there (a connection
// refused).
func ClosedAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// daemon is one running instance.
type daemon struct {
	name  string
	cmd   *exec.Cmd // the watchdog shell (see watchdog), the daemon's parent
	out   *os.File  // the program's standard output and error
	stdin io.Closer // the watchdog's standard input: the daemon is killed when it closes
	done  chan struct{}
	err   error // Wait's result, set before done is closed
}

// daemonSpec says how to run a daemon. In conf and argv, {{PORT}} stands for the port.
type daemonSpec struct {
	name     string   // the program's name, for messages
	dir      string   // its directory (see daemonDir)
	confName string   // the name of its configuration file in dir
	conf     string   // the configuration
	argv     []string // the command
	logs     []string // its log files, relative to dir, for the test log
	leftover string   // a glob ({{PORT}} replaced) of files outside dir to remove once it is killed
}

// startDaemon runs s.argv, with s.conf written to s.dir first, and waits until it accepts
// connections on 127.0.0.1:port. A daemon that exits before that (most likely because another
// program took the port in the meantime) is tried again on another port, three times in all.
// When the test ends, the daemon is killed with its children (see stop: no state is kept, and
// the logs are written line by line) and, if the test failed, its output and logs go to the
// test log.
func startDaemon(t testing.TB, s daemonSpec) (port int) {
	t.Helper()
	var last string
	for range 3 {
		port = freePort(t)
		p := strconv.Itoa(port)
		conf := strings.ReplaceAll(s.conf, "{{PORT}}", p)
		if err := os.WriteFile(filepath.Join(s.dir, s.confName), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		argv := make([]string, len(s.argv))
		for i, a := range s.argv {
			argv[i] = strings.ReplaceAll(a, "{{PORT}}", p)
		}
		leftover := strings.ReplaceAll(s.leftover, "{{PORT}}", p)
		d, err := runDaemon(s.name, s.dir, argv, leftover)
		if err != nil {
			t.Fatalf("start %s: %v", s.name, err)
		}
		stop := func() {
			d.stop()
			if leftover != "" {
				files, _ := filepath.Glob(leftover)
				for _, f := range files {
					_ = os.Remove(f)
				}
			}
		}
		err = d.waitAccepting(port)
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("%s's output and logs:\n%s", s.name, d.collect(s.dir, s.logs))
				}
			})
			return port
		}
		stop()
		last = fmt.Sprintf("%v\n%s", err, d.collect(s.dir, s.logs))
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("%s did not start: %s", s.name, last)
	return 0
}

// errExited reports a daemon that exited before accepting connections.
var errExited = errors.New("exited")

// watchdog is the shell that runs a daemon ("$@") in its own process group: it exits with the
// daemon, and kills the whole group (itself and the daemon with its children) when its
// standard input closes, which happens when the test process ends, however it ends, removing
// the daemon's directory ($DIR) and leftover files (the glob $LEFTOVER) first. A test binary
// that panics or times out runs no Cleanup, and would otherwise leave its daemons running.
// (When stop kills the group, the watchdog goes with it: the directory stays for the logs.)
const watchdog = `exec 3<&0 </dev/null
"$@" &
d=$!
{ read _ <&3; rm -rf "$DIR" $LEFTOVER; kill -s KILL 0; } &
w=$!
wait $d
s=$?
kill -s KILL $w 2>/dev/null
exit $s`

// runDaemon starts argv under the watchdog, its output going to dir/name.out.
func runDaemon(name, dir string, argv []string, leftover string) (*daemon, error) {
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdog, "watchdog"}, argv...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DIR="+dir, "LEFTOVER="+leftover)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = ownProcessGroup() // so that stop reaches its children
	stdin, err := cmd.StdinPipe()
	if err != nil {
		out.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	d := &daemon{name: name, cmd: cmd, out: out, stdin: stdin, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// waitAccepting waits until something accepts connections on 127.0.0.1:port, failing with
// errExited when the daemon exits first.
func (d *daemon) waitAccepting(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(daemonStartTimeout)
	for {
		select {
		case <-d.done:
			return fmt.Errorf("%s %w (%v) before accepting connections on %s", d.name, errExited, d.err, addr)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s accepted no connection on %s within %v", d.name, addr, daemonStartTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the daemon and its children and waits for it. Children that left the daemon's
// process group are killed first, by process id (squid's pinger starts a session of its own
// and would outlive squid by some seconds), and once the daemon has reaped them, the process
// group: the daemon and the rest of its children at once (so nginx's master does not log its
// workers' deaths).
func (d *daemon) stop() {
	pid := d.cmd.Process.Pid
	for _, kid := range strays(pid) {
		_ = killProcess(kid)
	}
	for deadline := time.Now().Add(time.Second); len(strays(pid)) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	_ = signalGroup(pid, os.Kill)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
	d.stdin.Close()
	d.out.Close()
}

// strays returns the ids of the live descendants of pid (its children, their children and
// so on) that are not in its process group, from /proc (none where there is no /proc).
func strays(pid int) []int {
	type proc struct{ pid, pgrp int }
	entries, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" { // a zombie is dead already
			continue
		}
		ppid, err1 := strconv.Atoi(f[1])
		pgrp, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], proc{id, pgrp})
		}
	}
	var out []int
	for todo := []int{pid}; len(todo) > 0; todo = todo[1:] {
		for _, c := range children[todo[0]] {
			if c.pgrp != pid {
				out = append(out, c.pid)
			}
			todo = append(todo, c.pid)
		}
	}
	return out
}

// collect returns the daemon's output and logs.
func (d *daemon) collect(dir string, logs []string) string {
	var b strings.Builder
	for _, name := range append([]string{d.name + ".out"}, logs...) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintf(&b, "--- %s: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "--- %s:\n%s", name, data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// version returns the first line that `prog flag` prints (on standard output or error).
func version(prog, flag string) string {
	out, _ := exec.Command(prog, flag).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
