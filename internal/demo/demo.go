// Package demo holds what the demos under examples/ say, and how, when they cannot start as
// asked: a port in use, a broker that does not answer. Each demo shares it so that they all
// behave alike: one wording, one exit code, one wait.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// BrokerWait is how long a demo's node gives its broker (-redis or -nats) to answer before it
// says, on standard error, that it cannot reach it (see WarnUnlinked).
const BrokerWait = 5 * time.Second

// ListenError words a failure to listen on -addr so that it says what to do: stop the other
// program or pass another -addr for a port in use, a port above 1024 for one that needs
// privileges, the form HOST:PORT otherwise. It wraps err. The demo prints it and exits 1.
func ListenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("-addr %s: %w: another program (another demo?) listens there; stop it, or pass another -addr (port 0 picks a free one)", addr, err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("-addr %s: %w: ports below 1024 need privileges; pass a port above 1024, such as -addr 127.0.0.1:8000", addr, err)
	}
	return fmt.Errorf("-addr %s: %w (want HOST:PORT, such as 127.0.0.1:8000)", addr, err)
}

// BrokerName says what -redis or -nats named (redisAddr when it is set, natsURL otherwise),
// and the command that starts such a broker on this machine, on the port asked for, for
// messages.
func BrokerName(redisAddr, natsURL string) (name, start string) {
	if redisAddr != "" {
		port := "6379"
		if _, p, err := net.SplitHostPort(redisAddr); err == nil {
			port = p
		}
		return "the Redis server at " + redisAddr, "redis-server --port " + port + " --save '' --appendonly no"
	}
	port := "4222"
	first, _, _ := strings.Cut(natsURL, ",") // nats.go takes a list of servers
	if u, err := url.Parse(strings.TrimSpace(first)); err == nil && u.Port() != "" {
		port = u.Port()
	}
	return "the NATS server at " + natsURL, "nats-server -a 127.0.0.1 -p " + port
}

// Ready reports whether a readiness handler (herald.Server.ReadyHandler) answers 200 now.
func Ready(h http.Handler) bool {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code == http.StatusOK
}

// WarnUnlinked writes to w, once, what to do when ready has not reported true within wait: a
// node whose broker (name, started by the command start; see BrokerName) does not answer keeps
// serving and links up by itself once it does, but until then it is not ready and its
// publications fail, which is puzzling to see without a word (the server's log line before it
// has the cause). prog ("nes", "chat") begins the line. It returns once ready reports true,
// once it has warned, or when ctx ends (the node is stopping), checking ready every 100 ms.
func WarnUnlinked(ctx context.Context, w io.Writer, prog string, ready func() bool, name, start string, wait time.Duration) {
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
			fmt.Fprintf(w, "%s: no answer from %s after %v: is it running? (%s) "+
				"Until it answers, /readyz says 503 and publications fail; the node links up by itself once it does. "+
				"Leave -redis and -nats out for one node.\n", prog, name, wait, start)
			return
		}
	}
}
