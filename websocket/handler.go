package websocket

import (
	"net/http"
	"sync"

	"github.com/herald-go/herald/internal/track"
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
	conns track.Set[*Conn]
}

// add tracks c, unless the registry has been shut down. c must not be in use by other
// goroutines yet: whoever finds it in the registry then sees c.registry set.
func (g *Registry) add(c *Conn) bool {
	c.registry = g
	return g.conns.Add(c)
}

func (g *Registry) remove(c *Conn) { g.conns.Remove(c) }

func (g *Registry) isShutdown() bool { return g.conns.Closed() }

// Len returns the number of open connections.
func (g *Registry) Len() int { return g.conns.Len() }

// Range calls fn for each open connection until fn returns false. fn may close connections.
func (g *Registry) Range(fn func(c *Conn) bool) {
	for _, c := range g.conns.Items() {
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
	g.conns.Close()
	g.CloseAll(StatusGoingAway, "server shutting down")
}
