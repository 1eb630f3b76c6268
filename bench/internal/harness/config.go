package harness

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

// Config is what the orchestrators share: where servers and client run, how they wait for a
// quiet machine and rerun disturbed windows, and where the built binaries are. Its methods
// are for the orchestrator's one goroutine.
type Config struct {
	Repeat    int           // runs of each measurement (each orchestrator registers -repeat itself)
	ServerCPU string        // taskset CPU list for the servers
	ClientCPU string        // taskset CPU list for the load client
	Quiet     float64       // before a measured run, wait until other processes use fewer cores; zero does not wait
	QuietWait time.Duration // the longest wait for Quiet
	MaxOther  float64       // rerun a window in which other processes used more cores than this
	Retries   int           // reruns allowed per window
	Budget    time.Duration // no more reruns once the runs have taken this long
	Out       string        // where the report is written

	// Clk is the kernel's clock ticks per second, set by Setup.
	Clk float64
	// BinDir holds the built binaries, made by Setup.
	BinDir string
}

// Flags registers the shared flags on the command line's flag set, with the defaults that
// differ between the orchestrators: -server-cpu, -client-cpu, -quiet, -quiet-wait,
// -max-other, -retries, -budget, -nice and -out.
func (c *Config) Flags(quietWait, budget time.Duration, out string) {
	flag.StringVar(&c.ServerCPU, "server-cpu", "0", "taskset CPU list for the servers")
	flag.StringVar(&c.ClientCPU, "client-cpu", "1", "taskset CPU list for the load client")
	flag.Float64Var(&c.Quiet, "quiet", 0.2, "before each measured run, wait until other processes use fewer cores than this (0: do not wait)")
	flag.DurationVar(&c.QuietWait, "quiet-wait", quietWait, "the longest wait for -quiet")
	flag.Float64Var(&c.MaxOther, "max-other", 0.25, "rerun a measured window in which other processes used more cores than this")
	flag.IntVar(&c.Retries, "retries", 2, "reruns allowed per window for -max-other (the quietest run is kept)")
	flag.DurationVar(&c.Budget, "budget", budget, "no more reruns once the measured runs have taken this long")
	flag.IntVar(&proc.Nice, "nice", 0, "run servers and client at this nice value (negative needs root; it takes CPU from everyone else on the machine)")
	flag.StringVar(&c.Out, "out", out, "file the report is written to")
}

// Main runs run (after the flags are parsed and checked), then kills every child still
// running and exits: with status 1 if run failed.
func Main(run func() error) {
	code := 0
	if err := run(); err != nil {
		log.Print(err)
		code = 1
	}
	proc.KillAll()
	os.Exit(code)
}

// Setup prepares a run of the orchestrator in pkg (such as "./deflate"): it checks that it
// runs from bench/ and that taskset is there, raises the limit on open files (children
// inherit it), makes every child die with the orchestrator on a signal, reads the clock
// ticks and makes BinDir. cleanup removes BinDir.
func (c *Config) Setup(pkg string) (cleanup func(), err error) {
	if _, err := os.Stat(pkg); err != nil {
		return nil, fmt.Errorf("run from bench/: go run %s", pkg)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, errors.New("taskset not found: install util-linux")
	}
	proc.RaiseNoFile()
	c.Clk = proc.ClockTicks()
	dir, err := os.MkdirTemp("", "herald-"+filepath.Base(pkg)+"-")
	if err != nil {
		return nil, err
	}
	c.BinDir = dir
	cleanup = func() { os.RemoveAll(dir) }
	proc.KillAllOnSignal(cleanup) // whatever happens, children die with us, and the binaries go
	return cleanup, nil
}

// Bin returns the path of the built binary name.
func (c *Config) Bin(name string) string { return filepath.Join(c.BinDir, name) }

// Build compiles the Go package pkg into the binary name in BinDir. dir is the folder the go
// command runs in (its module); empty means the current one.
func (c *Config) Build(dir, name, pkg string) error {
	cmd := exec.Command("go", "build", "-o", c.Bin(name), pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	return nil
}

// BuildServers builds ./servers/NAME, once per NAME, for the entries of servers (NAME or
// NAME@ARGS, see [SplitServer]). A server that does not build is left out: it is logged, and
// fails maps its entry to the first line of the error. It fails only when none builds.
func (c *Config) BuildServers(servers []string) (ok []string, fails map[string]string, err error) {
	fails = map[string]string{}
	built := map[string]error{}
	for _, s := range servers {
		name, _ := SplitServer(s)
		err, done := built[name]
		if !done {
			err = c.Build("", name, "./servers/"+name)
			built[name] = err
		}
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
			log.Printf("%s does not build; leaving it out: %v", s, err)
			fails[s] = first
			continue
		}
		ok = append(ok, s)
	}
	if len(ok) == 0 {
		return nil, fails, errors.New("no server builds")
	}
	return ok, fails, nil
}

// SplitServer splits a -servers entry, "NAME" or "NAME@ARG+ARG...", into the server's folder
// and the extra flags it is started with. The @ form compares variants of one server, e.g.
// "herald@-api=reader".
func SplitServer(s string) (name string, args []string) {
	name, rest, ok := strings.Cut(s, "@")
	if ok && rest != "" {
		args = strings.Split(rest, "+")
	}
	return name, args
}

// Named reports whether the -servers entry s is the server name or a variant of it
// (NAME@ARGS, [SplitServer]): a report judging herald against its peers must not count
// herald@... among the peers.
func Named(s, name string) bool {
	n, _ := SplitServer(s)
	return n == name
}

// ParseList splits a list separated by commas or spaces and drops repeats. Each entry must be
// one of known; with variants, it may also be NAME@ARGS ([SplitServer]) with NAME one of
// known.
func ParseList(s string, known []string, variants bool) ([]string, error) {
	var out []string
	for f := range strings.FieldsSeq(strings.ReplaceAll(s, ",", " ")) {
		name := f
		if variants {
			name, _ = SplitServer(f)
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("unknown %q (have %s)", f, strings.Join(known, ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("names none")
	}
	return out, nil
}

// ParseInts splits a list of integers separated by commas or spaces. Each must be from lo to
// hi; bad is the first entry that is not (empty when all are).
func ParseInts(s string, lo, hi int) (ns []int, bad string) {
	for f := range strings.FieldsSeq(strings.ReplaceAll(s, ",", " ")) {
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, f
		}
		ns = append(ns, n)
	}
	return ns, ""
}
