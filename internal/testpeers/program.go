package testpeers

// The repository's own programs (examples/...) as their users run them: built once per test
// binary by BuildProgram, run as processes by StartProgram, with CleanEnv's environment where a
// proxy setting of the machine must not get in the way.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildProgram returns the path of the repository's program pkg, a package path from the
// repository's root such as "./examples/chat", built with -race when this test binary has it
// (so that a data race in the program fails the test that runs it; see Program). Each package
// is built once per test binary, the first time a test asks; tests asking meanwhile wait for
// that build. The test fails when the program cannot be built.
//
// The binaries go beside the test binary when that is in a go command's temporary work
// directory, which the go command removes after the run; otherwise (a test binary built with
// go test -c) into a temporary directory that stays behind. $GO names the go command; empty
// means the go on $PATH.
func BuildProgram(t testing.TB, pkg string) string {
	t.Helper()
	bin, err := buildProgram(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// builds holds the programs built by this test binary, by package path.
var builds struct {
	mu   sync.Mutex
	dir  string
	pkgs map[string]*programBuild
}

// programBuild is one package's build, done once.
type programBuild struct {
	once sync.Once
	bin  string
	err  error
}

// buildProgram is BuildProgram, returning an error that wraps exec.ErrNotFound when there is no
// go command.
func buildProgram(pkg string) (string, error) {
	builds.mu.Lock()
	b := builds.pkgs[pkg]
	if b == nil {
		b = &programBuild{}
		if builds.pkgs == nil {
			builds.pkgs = map[string]*programBuild{}
		}
		builds.pkgs[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.bin, b.err = goBuild(pkg) })
	return b.bin, b.err
}

// goBuild builds pkg, from the repository's root, into the build directory.
func goBuild(pkg string) (string, error) {
	clean := path.Clean(pkg)
	if !strings.HasPrefix(pkg, "./") || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("testpeers.BuildProgram: %q is no package path from the repository's root (such as ./examples/chat)", pkg)
	}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	goCmd, err := exec.LookPath(goCmd)
	if err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	root := filepath.Clean(filepath.Join(Dir(), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(clean))); err != nil {
		return "", fmt.Errorf("go build %s: not found under %s: %w", pkg, root, err)
	}
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "herald-"+strings.ReplaceAll(clean, "/", "-"))
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, append(args, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s %s: %v\n%s", strings.Join(args, " "), pkg, err, out)
	}
	return bin, nil
}

// buildDir returns the directory the programs are built into (see BuildProgram), making it
// the first time.
func buildDir() (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		return builds.dir, nil
	}
	if exe, err := os.Executable(); err == nil {
		if d := filepath.Dir(exe); strings.HasPrefix(filepath.Base(filepath.Dir(d)), "go-build") {
			builds.dir = d
			return d, nil
		}
	}
	d, err := os.MkdirTemp("", "herald-programs-")
	if err != nil {
		return "", err
	}
	builds.dir = d
	return d, nil
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
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

// CleanEnv returns this process's environment without its proxy settings (HTTP_PROXY,
// HTTPS_PROXY, ALL_PROXY and NO_PROXY, in any case), for a program that must connect directly
// unless the test gives it a proxy: append the test's own settings to it.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// ProgramOptions configures a process started by StartProgram. The zero value runs the program
// without arguments, in this process's environment and directory, with nothing on its standard
// input.
type ProgramOptions struct {
	// Name is what messages call the program, such as "examples/chat" or
	// "nescli [-count 2 ws://...]". Empty means the file name of the binary.
	Name string
	// Args are the program's arguments.
	Args []string
	// Env is the program's environment, as in exec.Cmd. Nil means this process's environment,
	// proxy settings included (see CleanEnv).
	Env []string
	// Dir is the program's working directory. Empty means the test's (its package's folder).
	Dir string
	// Stdin is the program's standard input: an *os.File is handed to the program as it is,
	// anything else is copied to it. Nil means none (the program reads end of file).
	Stdin io.Reader
	// Wait bounds each wait for output: Program.Listening, Output.WaitFor and
	// Output.WaitLines. Zero means 20 s.
	Wait time.Duration
}

// Program is one run of a program as a process, started by StartProgram for one test. Its
// standard output and error are kept whole, for the test to read and wait on; when the test
// fails, they go to its log. A data race the program reports on its standard error (a binary
// of BuildProgram has the race detector when the test has it) fails the test once the program
// has exited. A program still running when StartProgram's test ends is killed.
//
// Its methods are safe for concurrent use; each takes the test (or subtest) calling it, which a
// failure fails.
type Program struct {
	// Stdout and Stderr are what the program wrote on its standard output and error.
	Stdout, Stderr *Output

	name     string
	cmd      *exec.Cmd
	exited   chan struct{} // closed once the program has exited and its output is all in
	err      error         // cmd.Wait's error, set before exited closes
	raceOnce sync.Once
}

// StartProgram runs bin as opts says and returns at once; see Listening for a server's first
// line. The test fails when the program cannot start. When the test ends, the program is killed
// (SIGKILL) if it still runs: a test that wants it stopped otherwise registers a Cleanup of its
// own after StartProgram, which runs first.
func StartProgram(t testing.TB, bin string, opts ProgramOptions) *Program {
	t.Helper()
	p, err := startProgram(t, bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProgram is StartProgram, returning the error: it may be called for owner from another
// test's goroutine.
func startProgram(owner testing.TB, bin string, opts ProgramOptions) (*Program, error) {
	if opts.Name == "" {
		opts.Name = filepath.Base(bin)
	}
	if opts.Wait == 0 {
		opts.Wait = 20 * time.Second
	}
	p := &Program{name: opts.Name, exited: make(chan struct{})}
	p.Stdout = &Output{name: opts.Name + "'s standard output", wait: opts.Wait, exited: p.exited, changed: make(chan struct{})}
	p.Stderr = &Output{name: opts.Name + "'s standard error", wait: opts.Wait, exited: p.exited, changed: make(chan struct{})}
	p.cmd = exec.Command(bin, opts.Args...)
	p.cmd.Env, p.cmd.Dir, p.cmd.Stdin = opts.Env, opts.Dir, opts.Stdin
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	p.cmd.WaitDelay = 5 * time.Second // bounds Wait when a child of the program holds its pipes open
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", opts.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	owner.Cleanup(func() {
		p.Stop(owner, syscall.SIGKILL, 10*time.Second)
		if owner.Failed() {
			for _, o := range []*Output{p.Stdout, p.Stderr} {
				if s := o.String(); s != "" {
					owner.Logf("%s:\n%s", o.name, strings.TrimSuffix(s, "\n"))
				}
			}
		}
	})
	return p, nil
}

// Listening waits for the first line of a server's standard output, "listening on
// http://ADDR", and returns ADDR (host:port). It kills the program and fails the test when the
// program prints another line, exits first, or prints nothing within ProgramOptions.Wait.
func (p *Program) Listening(t testing.TB) string {
	t.Helper()
	line, err := p.firstLine()
	if err != nil {
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s %v (its output is in the test log)", p.name, err)
	}
	addr, ok := strings.CutPrefix(line, "listening on http://")
	if !ok {
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s printed %q, want `listening on http://ADDR` (its output is in the test log)", p.name, line)
	}
	return addr
}

// firstLine waits for the first line of standard output.
func (p *Program) firstLine() (string, error) {
	text, err := p.Stdout.await(func(s string) bool { return strings.Contains(s, "\n") })
	if errors.Is(err, errExitedEarly) {
		return "", fmt.Errorf("exited before printing a line (%v)", p.err)
	}
	if err != nil {
		return "", fmt.Errorf("printed nothing within %v", p.Stdout.wait)
	}
	line, _, _ := strings.Cut(text, "\n")
	return line, nil
}

// Signal sends sig to the program.
func (p *Program) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends sig to the program, unless it has exited, and waits up to timeout for it to exit;
// a program still running then is killed, and fails the test. It returns the exit code: -1
// when a signal ended the program. Stopping a program that has exited only returns its code.
func (p *Program) Stop(t testing.TB, sig os.Signal, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.exited:
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not exit within %v of %v: killed", p.name, timeout, sig)
		}
	}
	p.checkRace(t)
	return p.ExitCode()
}

// Wait waits up to timeout for the program to exit by itself and returns its exit code (-1
// when a signal ended it). A program still running then is killed, and fails the test at once.
func (p *Program) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.checkRace(t)
		t.Fatalf("%s did not end within %v: killed (its output is in the test log)", p.name, timeout)
	}
	p.checkRace(t)
	return p.ExitCode()
}

// Exited is closed once the program has exited and its output is all in.
func (p *Program) Exited() <-chan struct{} { return p.exited }

// Err is the error of the program's end, as exec.Cmd.Wait returns it: nil for exit code 0.
// Only valid once Exited is closed.
func (p *Program) Err() error { return p.err }

// ExitCode is the program's exit code: -1 when a signal ended it. Only valid once Exited is
// closed.
func (p *Program) ExitCode() int {
	var ee *exec.ExitError
	switch {
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	case p.err != nil:
		return -1
	}
	return 0
}

// checkRace fails the test, once for the program, when the program has reported a data race.
// The program has exited.
func (p *Program) checkRace(t testing.TB) {
	t.Helper()
	p.raceOnce.Do(func() {
		if strings.Contains(p.Stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race (its standard error is in the test log)", p.name)
		}
	})
}

// Output is what a Program wrote on one of its streams, kept whole. Its methods are safe for
// concurrent use.
type Output struct {
	name   string
	wait   time.Duration
	exited <-chan struct{} // the program's

	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at each write
}

func (o *Output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(b)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(b), nil
}

// String returns what the program wrote so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Contains reports whether the program wrote s so far.
func (o *Output) Contains(s string) bool { return strings.Contains(o.String(), s) }

// WaitFor waits until the program has written s, failing the test when it exits without
// writing it or after ProgramOptions.Wait.
func (o *Output) WaitFor(t testing.TB, s string) {
	t.Helper()
	text, err := o.await(func(text string) bool { return strings.Contains(text, s) })
	if err != nil {
		t.Fatalf("%s: no %q %v; got:\n%s", o.name, s, err, text)
	}
}

// WaitLines waits until the program has written n whole lines and returns them, without their
// line feeds. It fails the test when the program exits before, or after ProgramOptions.Wait.
func (o *Output) WaitLines(t testing.TB, n int) []string {
	t.Helper()
	text, err := o.await(func(text string) bool { return strings.Count(text, "\n") >= n })
	if err != nil {
		t.Fatalf("%s: fewer than %d lines %v; got:\n%s", o.name, n, err, text)
	}
	return strings.SplitN(text, "\n", n+1)[:n]
}

// errExitedEarly is await's error when the program exits first.
var errExitedEarly = errors.New("before the program exited")

// await waits until done holds for what the program wrote, or the program has exited (with
// errExitedEarly), or the wait is over, and returns what the program wrote.
func (o *Output) await(done func(string) bool) (string, error) {
	deadline := time.After(o.wait)
	for {
		o.mu.Lock()
		text, changed := o.buf.String(), o.changed
		o.mu.Unlock()
		if done(text) {
			return text, nil
		}
		select {
		case <-changed:
		case <-o.exited:
			if text := o.String(); done(text) {
				return text, nil
			}
			return o.String(), errExitedEarly
		case <-deadline:
			return text, fmt.Errorf("within %v", o.wait)
		}
	}
}
