// Package metrics is how herald reports what it does: the nes server (package herald), the
// websocket and eventsource layers, the fallback and the broker call a Recorder that the
// application gives them (herald.Options.Metrics, websocket.Options.Metrics,
// eventsource.Options.Metrics). The package has no dependency: adapters in
// metrics/prometheus and metrics/otel turn the calls into Prometheus or OpenTelemetry
// instruments, and an application may write its own.
//
// Labels are bounded: a transport, a reason, a route id (or "other"), a status code; never a
// socket, a user or a path. A nil Recorder costs nothing: every layer checks for it once.
package metrics

import "time"

// Recorder receives herald's events. Its methods are called concurrently from the goroutines
// that serve connections, on the hot path of every message: they must be safe for concurrent
// use, quick, and should not allocate. Embed Nop to implement only some of them.
type Recorder interface {
	// ConnOpened counts a connection that opened (a nes socket, or a connection of a
	// websocket or eventsource layer used on its own).
	ConnOpened(t Transport)
	// ConnClosed counts a connection that closed, and why.
	ConnClosed(t Transport, r Reason)
	// MessageIn counts one message received from a client, of n bytes.
	MessageIn(t Transport, n int)
	// MessageOut counts one message sent to a client, of n bytes.
	MessageOut(t Transport, n int)
	// QueueDepth observes the bytes waiting to be sent to one connection when a message is
	// queued behind others (a connection that keeps up reports nothing). For a Flusher, the
	// nes server reports each connection's deepest backlog since the previous flush instead.
	QueueDepth(t Transport, n int)
	// Published counts one publication or broadcast made on this node (Server.Publish,
	// Server.Broadcast).
	Published()
	// Delivered counts one publication or broadcast message sent to one connection (on
	// whichever node the connection is).
	Delivered(t Transport)
	// Request observes one nes request: the route id it named ("other" for a path or an
	// unknown id), the status it was answered with, and how long it took.
	Request(route string, status int, d time.Duration)
	// Resumed counts a client that came back after a lost connection and asked for what it
	// missed (a fallback session, an eventsource Stream's Last-Event-ID).
	Resumed(r Resume)
	// BrokerPublish observes one publication through the broker, and its error if it failed.
	BrokerPublish(d time.Duration, err error)
	// BrokerDiscontinuity counts a gap in what the broker delivered (a reconnection that may
	// have lost messages): on topics topics, or on every topic when topics is 0.
	BrokerDiscontinuity(topics int)
	// Compressed observes one message compressed with permessage-deflate: in bytes before,
	// out bytes after.
	Compressed(in, out int)
}

// Flusher is implemented by a Recorder whose figures are read at intervals, such as
// metrics/prometheus's (at each scrape). herald's nes server then keeps each connection's
// message and byte counts on the connection, where counting touches no counter shared with
// other connections, and hands them over in bulk (AddCounts) in the function it registers with
// AddFlush, which the Recorder calls before each read, and when the connection closes.
type Flusher interface {
	// AddFlush registers fn, to be called before the figures are read; the returned function
	// removes it.
	AddFlush(fn func()) (remove func())
	// AddCounts adds counts of one transport's messages at once.
	AddCounts(t Transport, c Counts)
}

// Counts are message counts handed over at once (Flusher.AddCounts): what MessageIn,
// MessageOut and Delivered would have counted one by one.
type Counts struct {
	MessagesIn, BytesIn, MessagesOut, BytesOut, Deliveries int64
}

// Transport is what carries a connection.
type Transport uint8

// The transports.
const (
	WebSocket Transport = iota // a WebSocket
	SSE                        // an EventSource stream (for the fallback: a session opened by one)
	Poll                       // a fallback session opened by a long-poll
	NumTransports
)

var transportNames = [NumTransports]string{"websocket", "sse", "poll"}

// String returns the transport's label value: "websocket", "sse" or "poll".
func (t Transport) String() string {
	if t < NumTransports {
		return transportNames[t]
	}
	return "unknown"
}

// Reason is why a connection closed.
type Reason uint8

// The reasons.
const (
	Normal           Reason = iota // the client or the application closed it
	SlowConsumer                   // its send queue overflowed: the client did not read
	HeartbeatTimeout               // it stayed silent past the heartbeat's timeout
	ProtocolError                  // it broke the protocol (a bad frame, a message too large)
	Shutdown                       // the server shut down
	NumReasons
)

var reasonNames = [NumReasons]string{"normal", "slow_consumer", "heartbeat_timeout", "protocol_error", "shutdown"}

// String returns the reason's label value, such as "slow_consumer".
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Resume is how a client's attempt to resume went.
type Resume uint8

// The outcomes of a resume.
const (
	ResumeHit   Resume = iota // every message it missed was still there
	ResumeMiss                // the session or stream position it named is unknown here
	ResumeReset               // known, but what it missed is gone: it starts again
	NumResumes
)

var resumeNames = [NumResumes]string{"hit", "miss", "reset"}

// String returns the outcome's label value: "hit", "miss" or "reset".
func (r Resume) String() string {
	if r < NumResumes {
		return resumeNames[r]
	}
	return "unknown"
}

// Nop is a Recorder that records nothing. Embed it in a Recorder of your own to implement only
// the methods you need (and to keep compiling when methods are added).
type Nop struct{}

func (Nop) ConnOpened(Transport)               {}
func (Nop) ConnClosed(Transport, Reason)       {}
func (Nop) MessageIn(Transport, int)           {}
func (Nop) MessageOut(Transport, int)          {}
func (Nop) QueueDepth(Transport, int)          {}
func (Nop) Published()                         {}
func (Nop) Delivered(Transport)                {}
func (Nop) Request(string, int, time.Duration) {}
func (Nop) Resumed(Resume)                     {}
func (Nop) BrokerPublish(time.Duration, error) {}
func (Nop) BrokerDiscontinuity(int)            {}
func (Nop) Compressed(int, int)                {}
