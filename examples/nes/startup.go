package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"time"

	"github.com/herald-go/herald"
)

// brokerWait is how long the node gives the broker to answer before it says, on standard
// error, that it cannot reach it.
const brokerWait = 5 * time.Second

// listenError words a failure to listen on -addr so that it says what to do.
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("-addr %s: %w: another program (another demo?) listens there; stop it, or pass another -addr (port 0 picks a free one)", addr, err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("-addr %s: %w: ports below 1024 need privileges; pass a port above 1024, such as -addr 127.0.0.1:8000", addr, err)
	}
	return fmt.Errorf("-addr %s: %w (want HOST:PORT, such as 127.0.0.1:8000)", addr, err)
}

// brokerName says what -redis or -nats named, and how to start one on this machine, for
// messages.
func brokerName(redisAddr, natsURL string) (name, start string) {
	if redisAddr != "" {
		port := "6379"
		if _, p, err := net.SplitHostPort(redisAddr); err == nil {
			port = p
		}
		return "the Redis server at " + redisAddr, "redis-server --port " + port + " --save '' --appendonly no"
	}
	return "the NATS server at " + natsURL, "nats-server -a 127.0.0.1 -p 4222"
}

// warnUnlinked says on standard error, and what to do, when the node's link to its broker is
// not up within wait: the node keeps serving and links up by itself once the broker answers,
// but until then it is not ready and its publications fail, which is puzzling to see without
// a word (the server's log line above it has the cause). It gives up silently when ctx ends
// (the node is stopping).
func warnUnlinked(ctx context.Context, nes *herald.Server, name, start string, wait time.Duration) {
	ready := func() bool {
		rec := httptest.NewRecorder()
		nes.ReadyHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code == http.StatusOK
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-deadline.C:
			fmt.Fprintf(os.Stderr, "nes: no answer from %s after %v: is it running? (%s) "+
				"Until it answers, /readyz says 503 and publications fail; the node links up by itself once it does. "+
				"Leave -redis and -nats out for one node.\n", name, wait, start)
			return
		}
	}
}
