package herald

import (
	"net/http"
)

// ReadyHandler answers readiness probes (a Kubernetes readinessProbe, a load balancer's
// health check): 200 "ready" while the server takes connections, 503 with the reason once
// Shutdown or Close was called or while the link to the broker that joins the nodes is down.
// A load balancer then stops sending new clients here while those connected are drained.
func (s *Server) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.isShuttingDown() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		if err := s.brokerErr(); err != nil { // cluster.go
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("broker unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

// LiveHandler answers liveness probes: 200 "ok" as long as the process serves HTTP, also
// while it drains (a liveness probe that failed then would have the drain cut short by a
// restart).
func (s *Server) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}
