//go:build unix

package soak

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// logCounter is the server's Logger: it counts the lines of warning level and above by
// message (a slow socket dropped, a panic in a callback), so that a phase can say why the
// server dropped sockets.
type logCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newLogCounter() *logCounter { return &logCounter{counts: map[string]int{}} }

func (l *logCounter) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.counts[r.Level.String()+" "+r.Message]++
	l.mu.Unlock()
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

// take returns the counts since the last take, as "N× message" lines.
func (l *logCounter) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	for m, n := range l.counts {
		lines = append(lines, fmt.Sprintf("%d× %s", n, m))
	}
	clear(l.counts)
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}
