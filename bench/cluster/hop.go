package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// hopResult is one broker's hop: a 64-byte message from Publish on one node to the handler of
// another, paced at 10,000 a second, as measured by the broker package's own test.
type hopResult struct {
	broker   string
	p50, p99 time.Duration
	err      error
	command  string
}

// hops runs the brokers' hop measurements in herald's module (b.brokers minus none): broker/
// redis's TestHop (without history) and broker/nats's BenchmarkHop. They run unpinned, in the
// test process (both nodes) plus the broker.
func (b *bench) hops() []hopResult {
	var hs []hopResult
	if slices.Contains(b.brokers, "nats") {
		h := hopResult{broker: "nats", command: "go test -run '^$' -bench '^BenchmarkHop$' -benchtime 30000x -count=1 ./broker/nats/"}
		log.Printf("hop: %s", h.command)
		out, err := hopCommand(nil, "-run", "^$", "-bench", "^BenchmarkHop$", "-benchtime", "30000x", "-count=1", "./broker/nats/")
		if err == nil {
			m := regexp.MustCompile(`([0-9.]+) p50-µs\s+([0-9.]+) p99-µs`).FindStringSubmatch(out)
			if m == nil {
				err = fmt.Errorf("no p50-µs and p99-µs in:\n%s", out)
			} else {
				h.p50, h.p99 = micros(m[1]), micros(m[2])
			}
		}
		h.err = err
		hs = append(hs, h)
	}
	if slices.Contains(b.brokers, "redis") {
		h := hopResult{broker: "redis", command: "HERALD_REDIS_HOP=1 go test -run '^TestHop$' -v -count=1 ./broker/redis/"}
		log.Printf("hop: %s", h.command)
		out, err := hopCommand([]string{"HERALD_REDIS_HOP=1"}, "-run", "^TestHop$", "-v", "-count=1", "./broker/redis/")
		if err == nil {
			m := regexp.MustCompile(`history=false: .* p50 (\S+), p90 \S+, p99 (\S+),`).FindStringSubmatch(out)
			if m == nil {
				err = fmt.Errorf("no history=false line in:\n%s", out)
			} else {
				h.p50, err = time.ParseDuration(m[1])
				if err == nil {
					h.p99, err = time.ParseDuration(m[2])
				}
			}
		}
		h.err = err
		hs = append(hs, h)
	}
	for _, h := range hs {
		if h.err != nil {
			log.Printf("hop %s: %v", h.broker, h.err)
		} else {
			log.Printf("hop %s: p50 %v, p99 %v", h.broker, h.p50, h.p99)
		}
	}
	return hs
}

// hopCommand runs go test with args in herald's module (the parent folder), with env added,
// and returns its output.
func hopCommand(env []string, args ...string) (string, error) {
	cmd := exec.Command("go", append([]string{"test"}, args...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go test %v: %w\n%s", args, err, out)
	}
	return string(out), nil
}

// micros parses a number of µs.
func micros(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Microsecond))
}
