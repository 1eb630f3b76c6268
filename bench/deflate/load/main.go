// Command load is the compressed echo benchmark's load client: a raw
// WebSocket client (bench/internal/wsraw) that speaks permessage-deflate
// itself (RFC 7692, on klauspost/compress/flate), so that every server faces
// the same client.
//
// It offers exactly -offer as its Sec-WebSocket-Extensions header and
// follows the server's response: it compresses its messages with context
// takeover unless the offer or the response says client_no_context_takeover
// (then each message on its own), in the window the response allows
// (client_max_window_bits), and inflates the server's messages with the
// server's context unless the response says server_no_context_takeover.
// Messages are 16 KiB JSON documents (64 different ones, cycled), sent as
// text, one in flight per connection; every echo is inflated and compared
// with what was sent.
//
// Mode echo opens -conns connections, prints "negotiated RESPONSE", warms
// up for -warmup, then prints
//
//	start
//	stop msgs=N secs=S cpu=C up=U down=D
//
// around a measured window of -duration: echoes checked, seconds, the
// client's own user+system CPU seconds, and the socket bytes written (up)
// and read (down) in the window, frame headers included.
//
// Mode idle opens -conns connections (-dialers at a time), each of which
// echoes one document and then sends nothing more; it prints "negotiated
// RESPONSE" and "open N", answers pings, and holds them until standard
// input says "stop" or reaches EOF, a signal arrives, or -hold passes; then
// it prints "closed dropped=N".
//
// Connections are closed with SO_LINGER 0, so that repeated runs leave no
// TIME_WAIT sockets behind.
package main

import (
	"flag"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	var (
		mode     = flag.String("mode", "echo", "echo or idle")
		addr     = flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
		path     = flag.String("path", "/", "request path")
		offer    = flag.String("offer", "permessage-deflate; client_no_context_takeover", "the Sec-WebSocket-Extensions header offered")
		conns    = flag.Int("conns", 32, "connections")
		warmup   = flag.Duration("warmup", time.Second, "echo: warm-up before the measured window")
		duration = flag.Duration("duration", 5*time.Second, "echo: measured window")
		dialers  = flag.Int("dialers", 64, "idle: handshakes in progress at once")
		hold     = flag.Duration("hold", 5*time.Minute, "idle: the longest time to hold the connections")
	)
	flag.Parse()
	wsraw.Main(*mode, map[string]func() error{
		"echo": func() error { return runEcho(*addr, *path, *offer, *conns, *warmup, *duration) },
		"idle": func() error { return runIdle(*addr, *path, *offer, *conns, *dialers, *hold) },
	})
}
