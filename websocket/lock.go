package websocket

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// turnLock is a lock that a waiter can give up on, when its context ends or the connection
// closes. Taking a free one is a single atomic operation and giving it back two, with no
// channel: a read or write that nobody competes with pays almost nothing for it. Waiters, rare
// on a connection, wait on a channel made only for them, which every unlock that sees them
// closes.
//
// The zero value is unlocked. It costs 24 bytes, against a channel's hundred.
type turnLock struct {
	held    atomic.Bool
	waiters atomic.Int32 // goroutines in lockSlow
	mu      sync.Mutex   // guards wake
	wake    chan struct{}
}

// errLockClosed is what lock returns when done was closed first.
var errLockClosed = errors.New("websocket: connection closed while waiting for its turn")

// lock takes l, giving up with ctx.Err() when ctx ends or errLockClosed when done is closed.
func (l *turnLock) lock(ctx context.Context, done <-chan struct{}) error {
	if l.held.CompareAndSwap(false, true) {
		return nil
	}
	return l.lockSlow(ctx, done)
}

func (l *turnLock) lockSlow(ctx context.Context, done <-chan struct{}) error {
	for {
		l.mu.Lock()
		// Counted before the attempt: an unlock that comes after a failed attempt then sees
		// the waiter, and closes the channel it waits on (made below, under mu, before unlock
		// can take mu to close it).
		l.waiters.Add(1)
		if l.held.CompareAndSwap(false, true) {
			l.waiters.Add(-1)
			l.mu.Unlock()
			return nil
		}
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		wake := l.wake
		l.mu.Unlock()
		var err error
		select {
		case <-wake:
		case <-ctx.Done():
			err = ctx.Err()
		case <-done:
			err = errLockClosed
		}
		l.waiters.Add(-1)
		if err != nil {
			return err
		}
	}
}

// unlock gives l back and wakes whoever waits for it; they compete for it again.
func (l *turnLock) unlock() {
	l.held.Store(false)
	if l.waiters.Load() == 0 {
		return
	}
	l.mu.Lock()
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	l.mu.Unlock()
}
