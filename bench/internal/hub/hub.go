// Package hub is the broadcast benchmark's hub for the servers built as the libraries' chat
// examples are (bench/broadcast/servers/coder, gobwas, gorilla): a set of connections, each
// with a bounded queue of outgoing messages and a writer goroutine of its own; a message is
// put on every queue, and a connection whose queue is full is dropped.
package hub

import "sync"

// Hub is a set of [Client]s with queues of M. The zero value is not usable: see [New].
type Hub[M any] struct {
	mu      sync.Mutex
	clients map[*Client[M]]struct{}
}

// Client is one connection's place in a [Hub]: its queue of outgoing messages.
type Client[M any] struct {
	send chan M
}

// New returns an empty Hub.
func New[M any]() *Hub[M] {
	return &Hub[M]{clients: map[*Client[M]]struct{}{}}
}

// Join adds a client whose queue holds up to queue messages.
func (h *Hub[M]) Join(queue int) *Client[M] {
	cl := &Client[M]{send: make(chan M, queue)}
	h.mu.Lock()
	h.clients[cl] = struct{}{}
	h.mu.Unlock()
	return cl
}

// Leave takes cl out and closes its queue, once; [Hub.Write] then returns.
func (h *Hub[M]) Leave(cl *Client[M]) {
	h.mu.Lock()
	if _, ok := h.clients[cl]; ok {
		delete(h.clients, cl)
		close(cl.send)
	}
	h.mu.Unlock()
}

// Broadcast puts m on every client's queue; a client whose queue is full leaves.
func (h *Hub[M]) Broadcast(m M) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		select {
		case cl.send <- m:
		default:
			delete(h.clients, cl)
			close(cl.send)
		}
	}
}

// Write is cl's writer: it writes what cl's queue holds, in order, until the client leaves
// or a write fails (then it leaves).
func (h *Hub[M]) Write(cl *Client[M], write func(M) error) {
	for m := range cl.send {
		if err := write(m); err != nil {
			h.Leave(cl)
			return
		}
	}
}
