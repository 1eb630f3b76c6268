package fallback

import "sync"

// Sessions is the table of a server's sessions, by key (the session id in base64url). A
// Server calls it from many goroutines at once.
type Sessions interface {
	// Load returns the session with key, or nil.
	Load(key string) *Session
	// Store adds a session.
	Store(s *Session)
	// Delete removes the session with key, if there is one.
	Delete(key string)
	// Range calls fn for each session until fn returns false.
	Range(fn func(*Session) bool)
}

// MemorySessions is a Sessions in this process's memory: the table of a server that runs on
// one node.
type MemorySessions struct {
	m sync.Map
}

// NewMemorySessions returns an empty in-memory table.
func NewMemorySessions() *MemorySessions { return &MemorySessions{} }

// Load returns the session with key, or nil.
func (t *MemorySessions) Load(key string) *Session {
	if s, ok := t.m.Load(key); ok {
		return s.(*Session)
	}
	return nil
}

// Store adds a session.
func (t *MemorySessions) Store(s *Session) { t.m.Store(s.key, s) }

// Delete removes the session with key.
func (t *MemorySessions) Delete(key string) { t.m.Delete(key) }

// Range calls fn for each session until fn returns false.
func (t *MemorySessions) Range(fn func(*Session) bool) {
	t.m.Range(func(_, v any) bool { return fn(v.(*Session)) })
}
