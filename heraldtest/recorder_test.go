package heraldtest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/heraldtest"
)

// fakeT passes everything to the real test but Fatalf, which it records, ending the goroutine
// as the real one would: the failure paths of heraldtest can then be checked.
type fakeT struct {
	testing.TB
	failure string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs fn with a fakeT on a goroutine of its own and returns what it failed with, or
// "" when it did not fail.
func failure(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	f := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.failure
}

func TestRecorderOrder(t *testing.T) {
	t.Parallel()
	var rec heraldtest.Recorder[int] // the zero value is ready
	go func() {
		for i := 1; i <= 4; i++ {
			rec.Add(i)
		}
	}()
	assert.Equal(t, 1, rec.Next(t))
	assert.Equal(t, []int{2, 3}, rec.Wait(t, 2))
	assert.Equal(t, 4, rec.Next(t))
	assert.Empty(t, failure(t, func(tb testing.TB) { rec.None(tb, 20*time.Millisecond) }))
	assert.Equal(t, []int{1, 2, 3, 4}, rec.All(), "All returns the taken values too")
}

func TestRecorderFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// run is given a recorder with Timeout 50 ms holding one value that was not taken.
		run     func(tb testing.TB, rec *heraldtest.Recorder[string])
		want    string
		atLeast time.Duration // how long the failure must have waited
		atMost  time.Duration
	}{
		{name: "Next after the last value", run: func(tb testing.TB, rec *heraldtest.Recorder[string]) {
			rec.Next(tb)
			rec.Next(tb)
		}, want: "heraldtest: waited 50ms for values of type string: got 0 of 1 (raise Recorder.Timeout if the code under test is this slow)", atLeast: 50 * time.Millisecond, atMost: 5 * time.Second},
		{name: "Wait for more than come", run: func(tb testing.TB, rec *heraldtest.Recorder[string]) {
			rec.Wait(tb, 3)
		}, want: "heraldtest: waited 50ms for values of type string: got 1 of 3 (raise Recorder.Timeout if the code under test is this slow)", atLeast: 50 * time.Millisecond, atMost: 5 * time.Second},
		{name: "Wait for none", run: func(tb testing.TB, rec *heraldtest.Recorder[string]) {
			rec.Wait(tb, 0)
		}, want: "heraldtest: Recorder.Wait(0): n must be at least 1", atMost: time.Second},
		{name: "None with a value waiting", run: func(tb testing.TB, rec *heraldtest.Recorder[string]) {
			rec.None(tb, time.Minute)
		}, want: "heraldtest: want no values of type string, got first", atMost: time.Second},
		{name: "None with a value arriving", run: func(tb testing.TB, rec *heraldtest.Recorder[string]) {
			rec.Next(tb)
			time.AfterFunc(30*time.Millisecond, func() { rec.Add("late") })
			rec.None(tb, time.Minute)
		}, want: "heraldtest: want no values of type string, got late", atLeast: 30 * time.Millisecond, atMost: 5 * time.Second},
		{name: "None after the values were taken", run: func(tb testing.TB, rec *heraldtest.Recorder[string]) {
			rec.Next(tb)
			rec.None(tb, 30*time.Millisecond)
		}, atLeast: 30 * time.Millisecond, atMost: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &heraldtest.Recorder[string]{Timeout: 50 * time.Millisecond}
			rec.Add("first")
			start := time.Now()
			got := failure(t, func(tb testing.TB) { tc.run(tb, rec) })
			took := time.Since(start)
			assert.Equal(t, tc.want, got)
			assert.GreaterOrEqual(t, took, tc.atLeast)
			assert.Less(t, took, tc.atMost)
		})
	}
}

func TestRecorderConcurrentAdds(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 200
	var rec heraldtest.Recorder[[2]int]
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec.Add([2]int{w, i})
			}
		})
	}
	got := rec.Wait(t, writers*each)
	wg.Wait()
	next := make([]int, writers)
	for _, v := range got {
		require.Equal(t, next[v[0]], v[1], "writer %d's values out of order", v[0])
		next[v[0]]++
	}
	assert.Len(t, rec.All(), writers*each)
	rec.None(t, 10*time.Millisecond)
}
