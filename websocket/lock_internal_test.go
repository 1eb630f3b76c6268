package websocket

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTurnLockExcludes has many goroutines take turns on one counter; a turn that let two in
// at once would lose increments (and the race detector would see it).
func TestTurnLockExcludes(t *testing.T) {
	var l turnLock
	done := make(chan struct{})
	counter := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				require.NoError(t, l.lock(context.Background(), chanFunc(done)))
				counter++
				l.unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8*2000, counter)
	assert.Zero(t, l.state.Load(), "free, and no waiter left counted")
}

// TestTurnLockGivesUp checks that a waiter leaves when its context ends or the connection
// closes, and that the lock still works for the next one.
func TestTurnLockGivesUp(t *testing.T) {
	var l turnLock
	done := make(chan struct{})
	require.NoError(t, l.lock(context.Background(), chanFunc(done)))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.lock(ctx, chanFunc(done)), context.DeadlineExceeded)

	closed := make(chan struct{})
	go func() { time.Sleep(10 * time.Millisecond); close(closed) }()
	assert.ErrorIs(t, l.lock(context.Background(), chanFunc(closed)), errLockClosed)

	got := make(chan error, 1)
	go func() { got <- l.lock(context.Background(), chanFunc(done)) }()
	time.Sleep(10 * time.Millisecond)
	l.unlock()
	select {
	case err := <-got:
		require.NoError(t, err, "the waiter gets the lock once it is given back")
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter was not woken by unlock")
	}
	l.unlock()
	assert.Zero(t, l.state.Load())
}

// chanFunc returns a func that returns ch, as turnLock.lock takes.
func chanFunc(ch chan struct{}) func() <-chan struct{} {
	return func() <-chan struct{} { return ch }
}
