package main

import (
	"context"
	"errors"
	"fmt"
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

// brokerName says what -redis or -nats named, for messages.
func brokerName(redisAddr, natsURL string) string {
	if redisAddr != "" {
		return "the Redis server at " + redisAddr
	}
	return "the NATS server at " + natsURL
}

// warnUnlinked says on standard error, and what to do, when the node's link to its broker is
// not up within wait: the node keeps serving and links up by itself once the broker answers,
// but until then it is not ready and its publications fail, which is puzzling to see without
// a word. It gives up silently when ctx ends (the node is stopping).
func warnUnlinked(ctx context.Context, nes *herald.Server, name string, wait time.Duration) {
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
			cause := ""
			if n := nes.Node(); n != nil && n.Err() != nil {
				cause = " (" + n.Err().Error() + ")"
			}
			fmt.Fprintf(os.Stderr, "nes: no answer from %s after %v%s: is it running? "+
				"(redis-server --port 6379 --save '' --appendonly no, or nats-server -a 127.0.0.1 -p 4222) "+
				"Until it answers, /readyz says 503 and publications fail; the node links up by itself once it does. "+
				"Leave -redis and -nats out for one node.\n", name, wait, cause)
			return
		}
	}
}
