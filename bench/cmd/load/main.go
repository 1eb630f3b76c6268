// Command load is the benchmark's load client: a raw WebSocket client (bench/internal/wsraw),
// cheap enough that the server, not the client, should be the bottleneck.
//
// Mode echo opens -conns connections, keeps -depth binary messages of -size
// bytes in flight on each, checks every echo (sequence number and bytes),
// warms up for -warmup, then prints
//
//	start
//	stop msgs=N secs=S cpu=C
//
// around a measured window of -duration (or until -count messages were
// echoed in it), where cpu is the client's own user+system seconds in the
// window. Mode idle opens -conns connections, prints "open N" once all are
// open, answers pings, and holds them until standard input reaches EOF or
// says "stop", a signal arrives, or -hold passes; then it prints "closed dropped=N".
//
// Connections are closed with SO_LINGER 0, so that repeated runs leave no
// TIME_WAIT sockets behind.
package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	var (
		mode     = flag.String("mode", "echo", "echo or idle")
		addr     = flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
		path     = flag.String("path", "/", "request path")
		conns    = flag.Int("conns", 32, "connections")
		size     = flag.Int("size", 1024, "echo: message size in bytes")
		depth    = flag.Int("depth", 1, "echo: messages in flight per connection")
		warmup   = flag.Duration("warmup", time.Second, "echo: warm-up before the measured window")
		duration = flag.Duration("duration", 5*time.Second, "echo: measured window")
		count    = flag.Int64("count", 0, "echo: end the window early after this many messages (0: no limit)")
		dialers  = flag.Int("dialers", 64, "idle: handshakes in progress at once")
		hold     = flag.Duration("hold", 5*time.Minute, "idle: the longest time to hold the connections")
	)
	flag.Parse()
	wsraw.Main(*mode, map[string]func() error{
		"echo": func() error {
			return runEcho(*addr, *path, *conns, *size, *depth, wsraw.Load{Warmup: *warmup, Duration: *duration, Count: *count,
				Stop: func(w wsraw.Window) { fmt.Printf("stop msgs=%d secs=%.6f cpu=%.6f\n", w.Msgs, w.Secs, w.CPU) }})
		},
		"idle": func() error { return runIdle(*addr, *path, *conns, *dialers, *hold) },
	})
}

// runIdle is mode idle: see the package comment.
func runIdle(addr, path string, conns, dialers int, hold time.Duration) error {
	if conns < 1 || dialers < 1 {
		return fmt.Errorf("need -conns and -dialers above zero")
	}
	opts := &wsraw.Options{ReadBuffer: 256, Timeout: 20 * time.Second}
	cs, err := wsraw.DialAll(conns, dialers, func(int) (*wsraw.Conn, error) { return wsraw.Dial(addr, path, opts) })
	if err != nil {
		return fmt.Errorf("opening %d connections: %w", conns, err)
	}
	wsraw.Hold(cs, hold)
	return nil
}
