package writers

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countTask counts its runs and the most writers seen running tasks at once.
type countTask struct {
	wg      *sync.WaitGroup
	running *atomic.Int32
	most    *atomic.Int32
}

func (t countTask) Run(w *Worker) {
	n := t.running.Add(1)
	for {
		m := t.most.Load()
		if n <= m || t.most.CompareAndSwap(m, n) {
			break
		}
	}
	w.Begin()
	time.Sleep(10 * time.Microsecond)
	w.End()
	t.running.Add(-1)
	t.wg.Done()
}

// TestPoolRunsEveryTaskOnBoundedWriters submits many tasks and checks that each runs once, on
// no more writers at a time than the pool allows.
func TestPoolRunsEveryTaskOnBoundedWriters(t *testing.T) {
	p := New(3, 10*time.Millisecond, time.Second)
	var wg sync.WaitGroup
	var running, most atomic.Int32
	tasks := make([]Task, 2000)
	for i := range tasks {
		tasks[i] = countTask{&wg, &running, &most}
	}
	wg.Add(len(tasks))
	p.SubmitAll(tasks[:1000])
	for _, tk := range tasks[1000:] {
		p.Submit(tk)
	}
	wg.Wait()
	if m := most.Load(); m > 3 || m < 1 {
		t.Fatalf("%d writers ran tasks at once; the pool allows 3", m)
	}
}

// blockTask blocks in a write until release is closed, and records that it was told Stuck.
type blockTask struct {
	release chan struct{}
	stuck   chan struct{}
	once    sync.Once
}

func (t *blockTask) Run(w *Worker) {
	w.Begin()
	<-t.release
	w.End()
}

func (t *blockTask) Stuck() { t.once.Do(func() { close(t.stuck) }) }

type doneTask chan struct{}

func (t doneTask) Run(*Worker) { close(t) }

// TestPoolReplacesStuckWriter blocks the only writer of a pool in a write and checks that the
// task is told Stuck and that the task queued behind it still runs.
func TestPoolReplacesStuckWriter(t *testing.T) {
	p := New(1, 10*time.Millisecond, time.Millisecond)
	b := &blockTask{release: make(chan struct{}), stuck: make(chan struct{})}
	defer close(b.release)
	done := make(doneTask)
	p.Submit(b)
	p.Submit(done)
	for what, ch := range map[string]chan struct{}{"the blocked task was not told Stuck": b.stuck, "the task behind it did not run": done} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal(what)
		}
	}
}
