package brokertest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/herald-go/herald/broker"
)

// fakeTB records what a Recorder reports to its test, and the cleanups it registers.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) reported() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errors)
}

// TestRecorderOverflow checks that a Recorder past its bound keeps the first events, reports
// nothing from the broker's goroutine (where a call to an ended test panics), and fails the
// test when it ends.
func TestRecorderOverflow(t *testing.T) {
	tb := &fakeTB{TB: t}
	rec := NewRecorder(tb)
	var wg sync.WaitGroup
	wg.Go(func() { // as a broker's reader would
		for i := range maxEvents + 10 {
			rec.HandleMessage("t", fmt.Appendf(nil, "%d", i), broker.Position{})
		}
	})
	wg.Wait()
	if n := tb.reported(); n != 0 {
		t.Errorf("the Recorder reported %d errors from the broker's goroutine", n)
	}
	if evs := rec.Events(); len(evs) != maxEvents || evs[0].Payload != "0" {
		t.Errorf("kept %d events from %q, want the first %d", len(evs), evs[0].Payload, maxEvents)
	}
	for _, fn := range tb.cleanups {
		fn()
	}
	if n := tb.reported(); n != 1 {
		t.Errorf("the Recorder reported %d errors when the test ended, want 1", n)
	}
}
