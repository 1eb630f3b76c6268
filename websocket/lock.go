package websocket

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// turnLock is a lock that a waiter can give up on, when its context ends or the connection
// closes. Taking a free one is a single atomic operation and giving it back another, with no
// channel: a read or write that nobody competes with pays almost nothing for it. Waiters, rare
// on a connection, wait on a channel made only for them, which every unlock that sees them
// closes.
//
// The zero value is unlocked. It costs 24 bytes, against a channel's hundred.
type turnLock struct {
	state atomic.Int32 // bit 0: held; the rest: goroutines waiting in lockSlow, times 2
	mu    sync.Mutex   // guards wake
	wake  chan struct{}
}

const (
	turnHeld   = 1
	turnWaiter = 2
)

// errLockClosed is what lock returns when done was closed first.
var errLockClosed = errors.New("websocket: connection closed while waiting for its turn")

// lock takes l, giving up with ctx.Err() when ctx ends or errLockClosed when the channel
// done returns is closed. done is called only if l has to be waited for.
func (l *turnLock) lock(ctx context.Context, done func() <-chan struct{}) error {
	if l.state.CompareAndSwap(0, turnHeld) {
		return nil
	}
	return l.lockSlow(ctx, done())
}

func (l *turnLock) lockSlow(ctx context.Context, done <-chan struct{}) error {
	for {
		if l.tryLock() {
			return nil
		}
		l.mu.Lock()
		// Counted as a waiter first, then one more try: an unlock that comes after that try
		// failed sees the waiter, and closes the channel it waits on (made below, under mu,
		// before unlock can take mu to close it).
		l.state.Add(turnWaiter)
		if l.tryLock() {
			l.state.Add(-turnWaiter)
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
		l.state.Add(-turnWaiter)
		if err != nil {
			return err
		}
	}
}

// tryLock takes l if it is free, whoever waits.
func (l *turnLock) tryLock() bool {
	for {
		s := l.state.Load()
		if s&turnHeld != 0 {
			return false
		}
		if l.state.CompareAndSwap(s, s|turnHeld) {
			return true
		}
	}
}

// unlock gives l back and wakes whoever waits for it; they compete for it again.
func (l *turnLock) unlock() {
	if l.state.CompareAndSwap(turnHeld, 0) {
		return // nobody waits
	}
	l.state.Add(-turnHeld)
	l.mu.Lock()
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	l.mu.Unlock()
}
