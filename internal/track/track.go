// Package track keeps the set of open connections or streams that a Registry (in websocket
// and eventsource) ends when the server shuts down.
package track

import "sync"

// Set is a set of open things that can be closed to newcomers. The zero Set is empty and
// open; its methods are safe for concurrent use.
type Set[T comparable] struct {
	mu     sync.Mutex
	items  map[T]struct{}
	closed bool
}

// Add adds x and reports true, unless the set has been closed.
func (s *Set[T]) Add(x T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.items == nil {
		s.items = make(map[T]struct{})
	}
	s.items[x] = struct{}{}
	return true
}

// Remove takes x out of the set.
func (s *Set[T]) Remove(x T) {
	s.mu.Lock()
	delete(s.items, x)
	s.mu.Unlock()
}

// Len returns how many things the set holds.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// Items returns what the set holds now, in no particular order.
func (s *Set[T]) Items() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]T, 0, len(s.items))
	for x := range s.items {
		items = append(items, x)
	}
	return items
}

// Close makes every later Add fail.
func (s *Set[T]) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Closed reports whether Close has been called.
func (s *Set[T]) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
