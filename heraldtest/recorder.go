package heraldtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/client"
)

// DefaultTimeout is how long Recorder.Next and Recorder.Wait wait when Recorder.Timeout is
// zero, and how long Server.Client and Subscribe give the server to answer. It is generous, as
// waits in a passing test end as soon as the value arrives; only a failing test waits it out.
const DefaultTimeout = 10 * time.Second

// Recorder records values that arrive on other goroutines (a subscription's updates, a
// client's callbacks) so that a test can wait for them in order. Add records; Next, Wait and
// None take what was recorded, each value once, in the order of the calls to Add.
//
// The zero Recorder is ready to use. Add and All are safe for concurrent use and never block;
// Next, Wait and None fail the test with t.Fatalf, so call them from the test's own goroutine,
// one at a time.
type Recorder[T any] struct {
	// Timeout bounds Next and Wait. Zero means DefaultTimeout. Set it before the first wait.
	Timeout time.Duration

	name string // what the values are, in failure messages; "" means T's type

	mu      sync.Mutex
	values  []T
	taken   int           // values[:taken] were returned by Next or Wait
	changed chan struct{} // closed by the next Add; nil while nobody waits
}

// Add records v. Its method value is a handler or callback as it is: pass rec.Add to
// client.Client.Subscribe, or set it as client.Options.OnUpdate.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	r.values = append(r.values, v)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

// Next returns the next value not taken yet, waiting for it up to Timeout. It fails the test
// when none comes.
func (r *Recorder[T]) Next(t testing.TB) T {
	t.Helper()
	return r.Wait(t, 1)[0]
}

// Wait returns the next n values not taken yet, waiting up to Timeout for all of them. It
// fails the test when fewer come, saying how many did.
func (r *Recorder[T]) Wait(t testing.TB, n int) []T {
	t.Helper()
	if n < 1 {
		t.Fatalf("heraldtest: Recorder.Wait(%d): n must be at least 1", n)
		return nil
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if len(r.values)-r.taken >= n {
			got := append([]T(nil), r.values[r.taken:r.taken+n]...)
			r.taken += n
			r.mu.Unlock()
			return got
		}
		have, what := len(r.values)-r.taken, r.what()
		changed := r.wake()
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("heraldtest: waited %v for %s: got %d of %d (raise Recorder.Timeout if the code under test is this slow)",
				timeout, what, have, n)
			return nil
		}
	}
}

// None checks that nothing arrives for d: it fails the test at once if a value is waiting
// that Next has not taken, or as soon as one is recorded within d.
func (r *Recorder[T]) None(t testing.TB, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if len(r.values) > r.taken {
			v, what := r.values[r.taken], r.what()
			r.mu.Unlock()
			t.Fatalf("heraldtest: want no %s, got %s", what, show(v))
			return
		}
		changed := r.wake()
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return
		}
	}
}

// All returns every value recorded so far, taken or not, in order.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.values...)
}

// wake returns a channel that the next Add closes. r.mu is held.
func (r *Recorder[T]) wake() <-chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// setName names the values in failure messages.
func (r *Recorder[T]) setName(name string) {
	r.mu.Lock()
	r.name = name
	r.mu.Unlock()
}

// what names the values in failure messages. r.mu is held.
func (r *Recorder[T]) what() string {
	if r.name != "" {
		return r.name
	}
	return fmt.Sprintf("values of type %v", reflect.TypeFor[T]())
}

// show formats a recorded value for a failure message, JSON as text.
func show(v any) string {
	switch v := v.(type) {
	case json.RawMessage:
		return string(v)
	case client.Update:
		s := fmt.Sprintf("update of %s: %s", v.Path, v.Message)
		if v.Revoked {
			s += " (revoked)"
		}
		if v.Err != nil {
			s += fmt.Sprintf(" (%v)", v.Err)
		}
		return s
	}
	return fmt.Sprintf("%+v", v)
}
