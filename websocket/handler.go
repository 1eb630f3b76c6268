package websocket

import (
	"net/http"
	"sync"
)

// Handler is the route-level form of Upgrade: an http.Handler that upgrades WebSocket requests
// and hands each connection to Accept, and passes every other request to Fallback.
//
//	mux.Handle("/chat", &websocket.Handler{
//		Accept:  func(c *websocket.Conn) { ... },
//		Options: &websocket.Options{Verify: checkToken},
//	})
type Handler struct {
	// Accept serves one connection, on a goroutine of its own (ServeHTTP returns at once, so
	// that net/http frees what it holds for the request). When it returns, the connection is
	// closed with 1000 (normal closure) if it is still open.
	Accept func(c *Conn)

	// Options configures each connection; nil means the defaults. Options.Verify runs before
	// the connection is hijacked, so it can refuse an upgrade (authentication, bans) at no cost.
	Options *Options

	// Fallback serves requests that are not WebSocket handshakes. Nil means 426 Upgrade
	// Required.
	Fallback http.Handler
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !IsWebSocket(r) {
		if h.Fallback != nil {
			h.Fallback.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "websocket: this endpoint serves WebSocket connections only", http.StatusUpgradeRequired)
		return
	}
	c, err := Upgrade(w, r, h.Options)
	if err != nil {
		return // Upgrade has answered the request
	}
	// Serve the connection on a goroutine of its own and return: net/http then lets go of
	// the buffers and state it keeps for the request (about 10 KiB per connection), which
	// it would hold for the connection's whole life if Accept ran here.
	go func() {
		defer c.Close(StatusNormalClosure, "")
		h.Accept(c)
	}()
}

// Registry tracks open connections so that a server can close them all when it stops:
// http.Server.Shutdown does not track hijacked connections. Wire it once:
//
//	reg := &websocket.Registry{}
//	opts := &websocket.Options{Registry: reg}
//	srv.RegisterOnShutdown(reg.Shutdown)
//
// The zero Registry is ready to use. Its methods are safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	shutdown bool
}

func (g *Registry) add(c *Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		g.conns = make(map[*Conn]struct{})
	}
	g.conns[c] = struct{}{}
	c.registry = g
}

func (g *Registry) remove(c *Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

func (g *Registry) isShutdown() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shutdown
}

// Len returns the number of open connections.
func (g *Registry) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Range calls fn for each open connection until fn returns false. fn may close connections.
func (g *Registry) Range(fn func(c *Conn) bool) {
	g.mu.Lock()
	conns := make([]*Conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		if !fn(c) {
			return
		}
	}
}

// CloseAll closes every open connection with code and reason, all at once, and returns when
// each closing handshake has finished or timed out (Options.CloseTimeout).
func (g *Registry) CloseAll(code StatusCode, reason string) {
	var wg sync.WaitGroup
	g.Range(func(c *Conn) bool {
		wg.Go(func() { _ = c.Close(code, reason) })
		return true
	})
	wg.Wait()
}

// Shutdown refuses new upgrades (with 503) and closes every open connection with 1001 (going
// away). Pass it to http.Server.RegisterOnShutdown.
func (g *Registry) Shutdown() {
	g.mu.Lock()
	g.shutdown = true
	g.mu.Unlock()
	g.CloseAll(StatusGoingAway, "server shutting down")
}
