package herald

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/herald-go/herald/metrics"
	"github.com/herald-go/herald/websocket"
)

// shutdownState is the server's drain (Shutdown), and the hook that hands its sockets'
// counts to a metrics.Flusher (metrics.go).
type shutdownState struct {
	draining  atomic.Bool
	flushOnce sync.Once
	unflush   func() // set once, under flushOnce
}

// Shutdown drains the server gracefully: it refuses new connections (503), tells every
// connected client to reconnect, elsewhere if it can (a WebSocket is closed with 1012,
// service restart; a fallback session hears its close event, 1001), closes the WebSocket and
// EventSource connections it serves, and waits for their goroutines, or until ctx is done.
// It returns ctx's error when ctx ended the wait; the connections still close in the
// background, each bounded by its close timeout. ReadyHandler fails from the moment Shutdown
// is called. Shutdown and Close may both be called, any number of times.
//
// Call it when the http.Server shuts down:
//
//	srv.RegisterOnShutdown(func() { _ = nes.Shutdown(ctx) })
//
// or before http.Server.Shutdown, with the same deadline:
//
//	_ = nes.Shutdown(ctx)
//	_ = srv.Shutdown(ctx)
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.draining.Store(true)
	for _, sock := range s.socketsSnapshot("") {
		sock.noteClose(metrics.Shutdown)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.registry.CloseAll(websocket.StatusServiceRestart, "service restart")
		s.Close()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isShuttingDown reports whether Shutdown or Close was called.
func (s *Server) isShuttingDown() bool {
	if s.shutdown.draining.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// refuseDraining answers a new connection with 503 once Shutdown was called, and reports
// whether it did.
func (s *Server) refuseDraining(w http.ResponseWriter) bool {
	if !s.shutdown.draining.Load() {
		return false
	}
	w.Header().Set("Connection", "close")
	http.Error(w, "nes: the server is shutting down", http.StatusServiceUnavailable)
	return true
}
