// Package writers runs the writes of many connections on a bounded set of goroutines: a
// publish that reaches ten thousand connections hands each one with output pending to the
// pool, and a few long-lived writers send it, instead of a new goroutine per connection.
//
// A writer blocked on a slow connection does not hold up the others: a watchdog that ticks
// while writers run takes a writer that has spent a whole tick in one write out of the pool
// (it finishes that connection's output, then exits) and starts another in its place.
package writers

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a connection with output pending. Run writes it, calling Worker.Begin and
// Worker.End around each write that may block; the pool runs one Task at a time per
// submission, and the caller makes sure a connection is submitted again only once its
// previous Run is over or about to end (it keeps a "flushing" flag of its own).
type Task interface {
	Run(w *Worker)
}

// Stuck is implemented by tasks that want to know when their write has blocked a writer for a
// watchdog tick and the writer was taken out of the pool: the place to bound the write (a
// timer that closes the connection), so that writes that do not block need no deadline.
type Stuck interface {
	Stuck()
}

// Pool is a run queue of tasks and the writers that empty it. The zero value is not usable:
// use New.
type Pool struct {
	max    int
	linger time.Duration
	tick   time.Duration

	mu       sync.Mutex
	queue    []Task // pending from queue[head]
	head     int
	workers  []*Worker // attached: counted against max
	watched  []*Worker // every writer running, attached or detached
	idle     int       // attached workers waiting for work
	wake     chan struct{}
	watching bool
	watch    *time.Timer
}

// Worker is one writer goroutine. Its Begin and End bracket the writes a Task makes.
type Worker struct {
	p        *Pool
	cur      Task          // the task being run (guarded by Pool.mu)
	seq      atomic.Uint32 // writes begun
	busy     atomic.Bool   // in a write
	seen     uint32        // seq at the watchdog's last tick (guarded by Pool.mu)
	reported uint32        // the last seq reported Stuck (guarded by Pool.mu)
	detached atomic.Bool   // taken out of the pool: exits once its task is done
}

// New returns a pool of at most max attached writers (GOMAXPROCS*4 when max <= 0). An idle
// writer exits after linger; a writer that spends more than tick in one write is replaced.
func New(max int, linger, tick time.Duration) *Pool {
	if max <= 0 {
		max = runtime.GOMAXPROCS(0) * 4
	}
	p := &Pool{max: max, linger: linger, tick: tick, wake: make(chan struct{}, max)}
	p.watch = time.AfterFunc(time.Hour, p.check)
	p.watch.Stop()
	return p
}

// Submit queues one task.
func (p *Pool) Submit(t Task) {
	p.mu.Lock()
	p.queue = append(p.queue, t)
	p.startLocked(1)
	p.mu.Unlock()
}

// SubmitAll queues tasks in order, under one lock.
func (p *Pool) SubmitAll(ts []Task) {
	if len(ts) == 0 {
		return
	}
	p.mu.Lock()
	p.queue = append(p.queue, ts...)
	p.startLocked(len(ts))
	p.mu.Unlock()
}

// startLocked wakes idle writers, or starts new ones, for n new tasks.
func (p *Pool) startLocked(n int) {
	for i := 0; i < n && i < p.idle; i++ {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	for n -= p.idle; n > 0 && len(p.workers) < p.max; n-- {
		w := &Worker{p: p}
		p.workers = append(p.workers, w)
		p.watched = append(p.watched, w)
		go w.loop()
	}
	if !p.watching && len(p.watched) > 0 {
		p.watching = true
		p.watch.Reset(p.tick)
	}
}

// next takes the next task for w, waiting up to linger for one. It returns nil when w is to
// exit.
func (p *Pool) next(w *Worker, timer **time.Timer) Task {
	p.mu.Lock()
	w.cur = nil
	for {
		if w.detached.Load() {
			p.watched = remove(p.watched, w)
			p.mu.Unlock()
			return nil
		}
		if p.head < len(p.queue) {
			t := p.queue[p.head]
			p.queue[p.head] = nil
			if p.head++; p.head == len(p.queue) {
				p.queue, p.head = p.queue[:0], 0
			}
			w.cur = t
			p.mu.Unlock()
			return t
		}
		p.idle++
		p.mu.Unlock()
		if *timer == nil {
			*timer = time.NewTimer(p.linger)
		} else {
			(*timer).Reset(p.linger)
		}
		timedOut := false
		select {
		case <-p.wake:
			(*timer).Stop()
		case <-(*timer).C:
			timedOut = true
		}
		p.mu.Lock()
		p.idle--
		if timedOut && p.head == len(p.queue) && !w.detached.Load() {
			p.workers = remove(p.workers, w)
			p.watched = remove(p.watched, w)
			p.mu.Unlock()
			return nil
		}
	}
}

// remove returns ws without w, in some order.
func remove(ws []*Worker, w *Worker) []*Worker {
	for i, x := range ws {
		if x == w {
			last := len(ws) - 1
			ws[i] = ws[last]
			ws[last] = nil
			return ws[:last]
		}
	}
	return ws
}

// check is the watchdog's tick: a writer still in the write it was in at the last tick is
// detached (another writer takes its place when tasks are waiting) and its task, told it is
// Stuck. A detached writer is still watched: it goes on with its task, whose later writes
// may block too.
func (p *Pool) check() {
	var stuck []Stuck
	defer func() {
		for _, t := range stuck {
			t.Stuck()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	detached := 0
	for _, w := range p.watched {
		seq := w.seq.Load()
		if !w.busy.Load() || seq != w.seen {
			w.seen = seq
			continue
		}
		if !w.detached.Load() {
			w.detached.Store(true)
			p.workers = remove(p.workers, w)
			detached++
		}
		if w.reported != seq {
			w.reported = seq
			if t, ok := w.cur.(Stuck); ok {
				stuck = append(stuck, t)
			}
		}
	}
	if pending := len(p.queue) - p.head; pending > 0 && detached > 0 {
		p.startLocked(min(pending, detached))
	}
	if len(p.watched) == 0 {
		p.watching = false
		return
	}
	p.watch.Reset(p.tick)
}

func (w *Worker) loop() {
	var timer *time.Timer
	for {
		t := w.p.next(w, &timer)
		if t == nil {
			return
		}
		t.Run(w)
	}
}

// Begin marks the start of a write that may block. A nil Worker (a task run on a goroutine
// of its own) ignores it.
func (w *Worker) Begin() {
	if w != nil {
		w.seq.Add(1)
		w.busy.Store(true)
	}
}

// End marks the end of the write Begin started.
func (w *Worker) End() {
	if w != nil {
		w.busy.Store(false)
	}
}

// MaxWorkers is how many writers may be attached to the pool at once.
func (p *Pool) MaxWorkers() int { return p.max }
