// Package poller watches idle network connections with the operating system's poller (epoll on
// Linux) instead of a goroutine each, for herald's idle mode (websocket.Events.IdleMode).
//
// A [Conn] takes a plain TCP or Unix connection out of Go's own poller: it duplicates the
// descriptor, closes the net.Conn and registers the duplicate, edge-triggered, with one epoll
// loop per process. The loop runs on one goroutine while at least one Conn is open and stops
// with the last. Reads and writes are nonblocking system calls on the descriptor; a call that
// would block waits on a channel that the loop, a deadline timer or Close wakes, so a Conn is an
// ordinary net.Conn to whoever blocks on it.
//
// What a Conn adds is [Conn.Serve]: its owner hands it a function to run whenever the
// connection needs attention (bytes to read, the read deadline passing, the connection closing),
// on a worker goroutine (one of the loop's idle workers, else a new one), and the function
// returns the connection to the poller with [Conn.Park] once it has read everything the socket
// held. Between the two, the connection has no goroutine at all: an idle connection costs its
// Conn, the owner's own state and the kernel's socket buffers, which are not in the process's
// memory.
//
// The trade-off: the first message after a pause is handed to a worker goroutine (when no
// worker is idle, a new goroutine whose stack starts small and may grow again; the hand-over's
// latency is not measured, its CPU is within the few percent bench/idle's echo adds over a
// goroutine per connection), and one epoll loop serves every idle connection of the process. TLS connections
// cannot be polled this way (their records need a reader that keeps state between calls), so
// NewConn refuses them. Other platforms than Linux have no Conn: NewConn returns
// ErrUnsupported, and callers keep a goroutine per connection.
package poller

import "errors"

// ErrUnsupported is returned by NewConn for connections it cannot take over: TLS and other
// wrapped connections, and every connection on platforms other than Linux.
var ErrUnsupported = errors.New("poller: this connection cannot be polled (plain TCP or Unix sockets on Linux only)")

// ErrWouldBlock is returned by a read of a Conn in no-wait mode (see Conn.SetNoWait) when the
// socket has nothing to read: the caller should Park.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string { return "poller: read would block" }

// Timeout reports true, so that code that treats a timeout as "nothing read, nothing lost"
// treats this error the same way.
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }
