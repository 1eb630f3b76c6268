package client

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// callbackQueue runs functions one at a time, in order, on a goroutine that exists only while
// there is work, so an idle queue costs no goroutine. It bounds what may wait (limit); a push
// past it is refused unless forced (connection events are never dropped).
type callbackQueue struct {
	limit   int
	runners *runnerSet

	mu      sync.Mutex
	items   []func()
	running bool
}

func newCallbackQueue(limit int, runners *runnerSet) *callbackQueue {
	return &callbackQueue{limit: limit, runners: runners}
}

// push queues f. It reports false when the queue is full and force is false.
func (q *callbackQueue) push(f func(), force bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !force && len(q.items) >= q.limit {
		return false
	}
	q.items = append(q.items, f)
	if !q.running {
		q.running = true
		r := q.runners.add()
		go q.run(r)
	}
	return true
}

func (q *callbackQueue) run(r *runner) {
	defer q.runners.done(r)
	r.id.Store(goroutineID())
	q.mu.Lock()
	for len(q.items) > 0 {
		f := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		f()
		q.mu.Lock()
	}
	q.items = nil
	q.running = false
	q.mu.Unlock()
}

// runnerSet tracks the goroutines of every callbackQueue of a client, so that Close can wait
// for them all: all but the caller's own, when a callback calls Close, which must not wait
// for itself (that goroutine ends as soon as the callback returns).
type runnerSet struct {
	mu      sync.Mutex
	running map[*runner]struct{}
}

type runner struct {
	id   atomic.Uint64
	exit chan struct{}
}

func (s *runnerSet) add() *runner {
	r := &runner{exit: make(chan struct{})}
	s.mu.Lock()
	if s.running == nil {
		s.running = map[*runner]struct{}{}
	}
	s.running[r] = struct{}{}
	s.mu.Unlock()
	return r
}

func (s *runnerSet) done(r *runner) {
	s.mu.Lock()
	delete(s.running, r)
	s.mu.Unlock()
	close(r.exit)
}

// wait waits until every running goroutine but the caller's has ended.
func (s *runnerSet) wait() {
	self := goroutineID()
	s.mu.Lock()
	var others []*runner
	for r := range s.running {
		if r.id.Load() != self {
			others = append(others, r)
		}
	}
	s.mu.Unlock()
	for _, r := range others {
		<-r.exit
	}
}

// goroutineID returns the calling goroutine's id. The client needs it for one thing only: to
// tell, when it is closed, whether the caller is one of its own callback goroutines.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
