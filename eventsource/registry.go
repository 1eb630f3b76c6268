package eventsource

import (
	"errors"
	"sync"

	"github.com/herald-go/herald/internal/track"
)

// ErrShuttingDown is what New returns once the Registry in its Options has been shut down:
// having answered 503 Service Unavailable or, when Shutdown came while New was starting the
// stream, having ended the stream it had started.
var ErrShuttingDown = errors.New("eventsource: the server is shutting down")

// Registry tracks open streams so that a server can end them all when it stops:
// http.Server's Shutdown and Close do not see the connections New takes over. Wire it once:
//
//	reg := &eventsource.Registry{}
//	opts := &eventsource.Options{Registry: reg}
//	srv.RegisterOnShutdown(reg.Shutdown)
//
// The zero Registry is ready to use. Its methods are safe for concurrent use.
type Registry struct {
	streams track.Set[*EventSource]
}

func (g *Registry) isShutdown() bool { return g.streams.Closed() }

func (g *Registry) remove(es *EventSource) { g.streams.Remove(es) }

// Len returns the number of open streams.
func (g *Registry) Len() int { return g.streams.Len() }

// Range calls fn for each open stream until fn returns false. fn may close streams.
func (g *Registry) Range(fn func(es *EventSource) bool) {
	for _, es := range g.streams.Items() {
		if !fn(es) {
			return
		}
	}
}

// CloseAll closes every open stream, all at once, and returns when each has written what was
// queued before (each write bounded by Options.WriteTimeout). Clients see the end of the
// stream and reconnect after their retry time.
func (g *Registry) CloseAll() {
	var wg sync.WaitGroup
	g.Range(func(es *EventSource) bool {
		wg.Go(func() { _ = es.Close() })
		return true
	})
	wg.Wait()
}

// Shutdown refuses new streams (New answers 503 and returns ErrShuttingDown) and closes every
// open one. Pass it to http.Server.RegisterOnShutdown.
func (g *Registry) Shutdown() {
	g.streams.Close()
	g.CloseAll()
}
