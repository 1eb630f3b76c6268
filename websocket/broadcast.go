package websocket

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/internal/writers"
)

// Broadcaster writes messages to a set of connections without waiting for any of them.
// Broadcast queues a prepared message on every member and returns; a few long-lived writer
// goroutines, shared by all Broadcasters of the process, then write it to each member, one
// write(2) of shared bytes per connection (see PreparedMessage). A member that is slow to
// read never holds up the others: a writer blocked on it is replaced by another, and a
// member whose queued messages pass its Options.WriteQueueLimit, or whose write fails or
// takes longer than BroadcasterOptions.WriteTimeout, is closed (CloseNow) and leaves the set.
// Each member receives the messages in the order they were broadcast.
//
// Members may also be written to directly (Write, WritePrepared) at any time: such a message
// goes out whole, between two broadcast messages.
//
// A Broadcaster is safe for concurrent use.
type Broadcaster struct {
	timeout time.Duration

	mu      sync.Mutex
	members []*member // in no particular order; member.index is the position
	byConn  map[*Conn]*member
	closed  bool
	wg      sync.WaitGroup // members with a writer at work
}

// BroadcasterOptions configures a Broadcaster. The zero value is usable.
type BroadcasterOptions struct {
	// WriteTimeout bounds the writing of one message to one member; a member that takes
	// longer is closed. Zero means 10 seconds.
	WriteTimeout time.Duration
}

// member is one connection of a Broadcaster, with its queue of messages to write.
type member struct {
	b     *Broadcaster
	c     *Conn
	index int // in b.members, guarded by b.mu

	mu       sync.Mutex
	queue    []*PreparedMessage // waiting from queue[head]
	head     int
	queued   int64 // bytes waiting
	flushing bool  // a writer owns the queue
	gone     bool
	writes   atomic.Uint64 // odd while a write is under way: see Stuck
}

// broadcastPool is the writers all Broadcasters share.
var broadcastPool = writers.New(0, 50*time.Millisecond, 2*time.Millisecond)

// NewBroadcaster returns an empty Broadcaster.
func NewBroadcaster(opts *BroadcasterOptions) *Broadcaster {
	b := &Broadcaster{timeout: 10 * time.Second, byConn: map[*Conn]*member{}}
	if opts != nil && opts.WriteTimeout > 0 {
		b.timeout = opts.WriteTimeout
	}
	return b
}

// Add makes c a member: it receives the messages broadcast from now on. Adding a member
// twice, or to a closed Broadcaster, does nothing.
func (b *Broadcaster) Add(c *Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.byConn[c] != nil {
		return
	}
	m := &member{b: b, c: c, index: len(b.members)}
	b.members = append(b.members, m)
	b.byConn[c] = m
}

// Remove takes c out of the set: messages queued for it and not yet written are dropped. It
// does not close c.
func (b *Broadcaster) Remove(c *Conn) {
	b.mu.Lock()
	m := b.byConn[c]
	if m != nil {
		b.removeLocked(m)
	}
	b.mu.Unlock()
	if m != nil {
		m.drop()
	}
}

// removeLocked takes m out of the members.
func (b *Broadcaster) removeLocked(m *member) {
	if b.byConn[m.c] != m {
		return
	}
	delete(b.byConn, m.c)
	last := len(b.members) - 1
	b.members[m.index] = b.members[last]
	b.members[m.index].index = m.index
	b.members[last] = nil
	b.members = b.members[:last]
}

// Len returns the number of members.
func (b *Broadcaster) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.members)
}

// Broadcast queues pm on every member and returns without waiting for the writes.
func (b *Broadcaster) Broadcast(pm *PreparedMessage) {
	var batch [64]writers.Task
	n := 0
	var slow []*member
	b.mu.Lock()
	for _, m := range b.members {
		start, ok := m.push(pm)
		if !ok {
			slow = append(slow, m)
			continue
		}
		if start {
			b.wg.Add(1)
			batch[n] = m
			if n++; n == len(batch) {
				broadcastPool.SubmitAll(batch[:n])
				n = 0
			}
		}
	}
	for _, m := range slow {
		b.removeLocked(m)
	}
	b.mu.Unlock()
	broadcastPool.SubmitAll(batch[:n])
	for _, m := range slow {
		m.drop()
		_ = m.c.CloseNow()
	}
}

// Close removes every member (without closing them) and waits for the writes under way.
// Broadcasts after Close reach no one.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	b.closed = true
	members := b.members
	b.members, b.byConn = nil, map[*Conn]*member{}
	b.mu.Unlock()
	for _, m := range members {
		m.drop()
	}
	b.wg.Wait()
}

// push queues pm. It reports whether the caller must hand m to a writer (none owns its
// queue), and false in ok when the queue would pass the connection's WriteQueueLimit.
func (m *member) push(pm *PreparedMessage) (start, ok bool) {
	n := int64(len(pm.data))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		return false, true
	}
	if m.queued > 0 && m.queued+n > m.c.opts.WriteQueueLimit {
		return false, false
	}
	m.queue = append(m.queue, pm)
	m.queued += n
	if m.flushing {
		return false, true
	}
	m.flushing = true
	return true, true
}

// drop empties m's queue for good.
func (m *member) drop() {
	m.mu.Lock()
	m.gone = true
	clear(m.queue)
	m.queue, m.head, m.queued = nil, 0, 0
	m.mu.Unlock()
}

// Run writes m's queue until it is empty, on a writer of the pool.
func (m *member) Run(w *writers.Worker) {
	defer m.b.wg.Done()
	for {
		m.mu.Lock()
		if m.gone || m.head == len(m.queue) {
			m.flushing = false
			m.mu.Unlock()
			return
		}
		pm := m.queue[m.head]
		m.queue[m.head] = nil
		if m.head++; m.head == len(m.queue) {
			m.queue, m.head = m.queue[:0], 0
		}
		m.mu.Unlock()
		// No deadline: setting one costs about as much as the rest of a delivery. A write
		// that blocks its writer is bounded once the pool notices (Stuck).
		m.writes.Add(1)
		w.Begin()
		err := m.c.WritePrepared(context.Background(), pm)
		w.End()
		m.writes.Add(1)
		m.mu.Lock()
		m.queued -= int64(len(pm.data))
		m.mu.Unlock()
		if err != nil {
			m.leave()
		}
	}
}

// leave takes m out of its Broadcaster and closes its connection.
func (m *member) leave() {
	m.b.mu.Lock()
	m.b.removeLocked(m)
	m.b.mu.Unlock()
	m.drop()
	_ = m.c.CloseNow()
}

// Stuck runs when a write to m has blocked a writer of the pool for a watchdog tick: if the
// same write is still under way WriteTimeout from now, m leaves and its connection closes,
// which ends the write.
func (m *member) Stuck() {
	seq := m.writes.Load()
	if seq%2 == 0 {
		return
	}
	time.AfterFunc(m.b.timeout, func() {
		if m.writes.Load() == seq {
			m.leave()
		}
	})
}
