package poller

import (
	"sync"
	"time"
)

// timers holds every deadline and timer of every Conn in one min-heap, behind one time.Timer
// for the earliest: a Conn pays a heap entry (24 bytes) while it has one, instead of a
// runtime timer and its closure (about 150 bytes) for as long as it lives.
type timers struct {
	mu   sync.Mutex
	heap []timerEntry
	t    *time.Timer // fires at heap[0].when; made on first use
	at   int64       // when t is set to fire, 0: stopped
}

// timerEntry is one pending deadline or timer: its time, with the kind in the two lowest
// bits (a few nanoseconds earlier or later change nothing), and its Conn.
type timerEntry struct {
	key int64
	c   *Conn
}

func (e timerEntry) kind() int8 { return int8(e.key & 3) }

// idx returns where e's Conn keeps e's index in the heap.
func (e timerEntry) idx() *int32 {
	_, idx := e.c.slot(e.kind())
	return idx
}

// The kinds of entry.
const (
	kindRead int8 = iota
	kindWrite
	kindUser
	kindCount
)

// set puts c's deadline or timer of kind in the heap to fire at when, or takes it out when
// when is 0.
func (ts *timers) set(c *Conn, kind int8, when int64) {
	whenp, idxp := c.slot(kind)
	ts.mu.Lock()
	whenp.Store(when)
	key := when&^3 | int64(kind)
	idx := int(*idxp)
	switch {
	case when == 0 && idx >= 0:
		ts.remove(idx)
	case when == 0:
	case idx >= 0:
		ts.heap[idx].key = key
		ts.fix(idx)
	default:
		*idxp = int32(len(ts.heap))
		ts.heap = append(ts.heap, timerEntry{key: key, c: c})
		ts.up(len(ts.heap) - 1)
	}
	ts.arm()
	ts.mu.Unlock()
}

// arm points the time.Timer at the earliest entry. ts.mu is held.
func (ts *timers) arm() {
	if len(ts.heap) == 0 {
		if ts.t != nil && ts.at != 0 {
			ts.t.Stop()
			ts.at = 0
		}
		if cap(ts.heap) > 1024 {
			ts.heap = nil // a burst of deadlines does not pin its array
		}
		return
	}
	first := ts.heap[0].key
	if first == ts.at {
		return
	}
	ts.at = first
	d := time.Duration(first - time.Now().UnixNano())
	if ts.t == nil {
		ts.t = time.AfterFunc(d, ts.fire)
	} else {
		ts.t.Reset(d)
	}
}

// fire runs on the time.Timer's goroutine: it takes every entry that is due out of the heap
// and hands each to its Conn.
func (ts *timers) fire() {
	var expired []timerEntry
	ts.mu.Lock()
	now := time.Now().UnixNano()
	for len(ts.heap) > 0 && ts.heap[0].key <= now {
		expired = append(expired, ts.heap[0])
		ts.remove(0)
	}
	ts.at = 0
	ts.arm()
	ts.mu.Unlock()
	for _, e := range expired {
		e.c.due(e.kind())
	}
}

func (ts *timers) less(i, j int) bool { return ts.heap[i].key < ts.heap[j].key }

func (ts *timers) swap(i, j int) {
	h := ts.heap
	h[i], h[j] = h[j], h[i]
	*h[i].idx() = int32(i)
	*h[j].idx() = int32(j)
}

func (ts *timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !ts.less(i, p) {
			return
		}
		ts.swap(i, p)
		i = p
	}
}

func (ts *timers) down(i int) {
	n := len(ts.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && ts.less(r, l) {
			m = r
		}
		if !ts.less(m, i) {
			return
		}
		ts.swap(i, m)
		i = m
	}
}

func (ts *timers) fix(i int) {
	ts.up(i)
	ts.down(i)
}

// remove takes entry i out of the heap.
func (ts *timers) remove(i int) {
	last := len(ts.heap) - 1
	*ts.heap[i].idx() = -1
	if i != last {
		ts.heap[i] = ts.heap[last]
		*ts.heap[i].idx() = int32(i)
	}
	ts.heap[last] = timerEntry{}
	ts.heap = ts.heap[:last]
	if i != last {
		ts.fix(i)
	}
}
