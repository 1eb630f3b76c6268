package eventsource

import (
	"errors"
	"net/http"
)

// Handler is the route-level form of New: an http.Handler that starts an event stream for each
// EventSource request, hands it to Accept, and passes every other request to Fallback.
//
//	news := eventsource.NewStream(nil)
//	mux.Handle("/news", &eventsource.Handler{
//		Accept:  func(es *eventsource.EventSource) { _ = news.Subscribe(es) },
//		Options: &eventsource.Options{Retry: 10 * time.Second},
//	})
//
// ServeHTTP returns as soon as Accept has, on a connection New took over (HTTP/1.x), so that
// net/http lets go of what it holds for the request: the stream lives on by itself, for a
// few KiB. Over HTTP/2 it then waits until the stream ends, as it must.
type Handler struct {
	// Accept is called with each new stream, on the request's goroutine. It may subscribe the
	// stream to a Stream, keep it to Send to later, or Send and Close at once. The stream stays
	// open when Accept returns, until it is closed, the client goes away, or its Stream ends
	// it. Accept may also serve the stream itself until Done (a loop of Send calls, say), but
	// then holds the request's goroutine, and with it net/http's state, meanwhile.
	Accept func(es *EventSource)

	// Options configures each stream; nil means the defaults.
	Options *Options

	// Fallback serves requests that are not for an event stream (see IsEventSource). Nil
	// means 406 Not Acceptable.
	Fallback http.Handler
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !IsEventSource(r) {
		if h.Fallback != nil {
			h.Fallback.ServeHTTP(w, r)
			return
		}
		http.Error(w, "eventsource: this endpoint serves event streams only (Accept: text/event-stream)", http.StatusNotAcceptable)
		return
	}
	es, err := New(w, r, h.Options)
	if err != nil {
		if errors.Is(err, ErrNotSupported) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	if h.Accept != nil {
		h.Accept(es)
	}
	if !es.Hijacked() {
		<-es.Done()
	}
}
