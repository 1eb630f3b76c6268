package eventsource

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/broker"
)

// StreamOptions configures a Stream. A nil *StreamOptions is valid and means all defaults.
// The three history bounds apply together: an event leaves the history as soon as any of them
// is crossed.
type StreamOptions struct {
	// HistoryLimit is how many events the history keeps for clients that reconnect. Zero means
	// 1024.
	HistoryLimit int

	// HistoryBytes bounds the encoded size of the events in the history. Zero means 4 MiB.
	HistoryBytes int

	// HistoryAge is how long an event stays in the history. Zero means no age limit. Old
	// events are dropped when the Stream is next published to or subscribed to.
	HistoryAge time.Duration

	// GapEvent is the type of the event that tells a reconnecting client that the history no
	// longer reaches back to its Last-Event-ID (see Stream). Zero means "gap".
	GapEvent string

	// Broker shares the Stream's events and history among the nodes of a cluster: see
	// JoinStream, which requires it (NewStream refuses it). HistoryLimit and HistoryAge then
	// also bound the history the broker keeps. Nil means a Stream of this process only.
	Broker *broker.Node

	// BrokerTimeout bounds each call to the Broker (a publication, a read of its history).
	// Zero means 2 seconds.
	BrokerTimeout time.Duration
}

const (
	defaultHistoryLimit = 1024
	defaultHistoryBytes = 4 << 20
	defaultGapEvent     = "gap"
)

// ErrSubscribed is returned by Subscribe for an EventSource that is already subscribed to a
// Stream.
var ErrSubscribed = errors.New("eventsource: already subscribed to a stream")

// Stream is a topic that many EventSources subscribe to, with a bounded history so that a
// client that reconnects with Last-Event-ID receives exactly the events it missed: no gap and
// no duplicate. A server may keep one Stream per topic, or one per session.
//
// Publish, Subscribe, Unsubscribe and Close are safe for concurrent use.
//
// # Ids
//
// Every event in a Stream has an id. Publish keeps the id it is given, unchanged, and gives an
// event without one the next of a sequence "1", "2", ...; ids should be unique within the
// Stream. A Stream that outlives a server restart does not exist, so give ids that cannot be
// confused across restarts (a prefix per process) when that matters.
//
// # Replay and gaps
//
// Subscribe looks up the client's Last-Event-ID in the history: the events after it are sent
// first, then live ones. An empty Last-Event-ID, or the id of the newest event, means nothing
// was missed. When the id is not in the history (the events after it were dropped by the
// history's bounds, or it comes from another server or another run), the client is told
// before anything else with one event of type StreamOptions.GapEvent ("gap"), whose data is
// the Last-Event-ID that could not be resumed and whose id is the id of the newest event that
// has left the history (empty when none has), followed by the whole history and live events.
// A browser sees it with addEventListener("gap", ...), not onmessage. Because of that id, a
// client that drops again before the next event resumes from the oldest event kept instead of
// being told of the same gap again.
//
// # Slow clients
//
// Publishing never waits for a client: the event is appended to the history, and up to
// GOMAXPROCS goroutines then write it to the subscribers, each write taking what the socket
// takes at once (see EventSource). The events a subscriber has yet to receive are not copied;
// they are read from the history, so a slow subscriber costs no memory. A subscriber whose
// next event has left the history has fallen too far behind: its EventSource ends with
// ErrSlowClient (this is the overflow policy), its client reconnects with the id of the last
// event it did receive, and gets the rest of the history after a gap event, or without one
// when it was only briefly behind. A client that reads nothing at all is disconnected by
// Options.WriteTimeout.
type Stream struct {
	limit    int
	maxBytes int
	maxAge   time.Duration
	gapType  string

	mu      sync.RWMutex
	log     []entry              // the history, oldest first
	first   uint64               // sequence number of log[0] (or of the next event when log is empty)
	bytes   int                  // encoded size of log
	lastID  string               // id of the newest event published, kept or not
	dropped string               // id of the newest event that has left the history
	nextID  uint64               // the next automatic id
	subs    map[*EventSource]int // each subscriber's place in list
	list    []*EventSource       // the subscribers, by and large in the order they came
	snap    []*EventSource       // a copy of list for deliver; nil when list has changed
	closed  bool

	delivering bool // a round of deliver runs
	again      bool // events were published during the round: another must follow

	writers writers

	leave  func()  // leaves the Broker's topic (JoinStream); nil otherwise
	shared *shared // the cluster's side of a Stream made by JoinStream (cluster.go); nil otherwise
	misuse error   // NewStream was given a Broker: what Publish and Subscribe return
}

// writers are the goroutines that write to a Stream's subscribers when a write may have to
// wait for the client: every write on HTTP/2 or TLS, and on a plain socket only what the
// socket did not take at once. Such a subscriber is handed to an idle writer, or gets a new
// one: a writer stuck on a client that does not read never holds up another subscriber. A
// writer that has finished waits for more work (one to two times writerLinger, see work),
// then ends, so an idle Stream has no goroutine. Reusing writers saves starting a goroutine (and growing its stack) per
// subscriber per event.
type writers struct {
	idle chan *EventSource
}

// writerLinger is how long a writer waits for more work before it ends, at least (see work).
const writerLinger = 100 * time.Millisecond

// handoff gives es to an idle writer, if one is waiting.
func (w *writers) handoff(es *EventSource) bool {
	select {
	case w.idle <- es:
		return true
	default:
		return false
	}
}

// work runs es's writer, then the writers of the subscribers handed to it, until none comes
// for writerLinger.
func (w *writers) work(es *EventSource) {
	var scratch [][]byte
	// The timer is not moved for every subscriber served: when it fires, a writer that has
	// worked since it was set sets it again, and one that has not ends (after 1 to 2 times
	// writerLinger idle).
	t := time.NewTimer(writerLinger)
	defer t.Stop()
	for {
		scratch = es.run(scratch, true)
		worked := true
	wait:
		select {
		case es = <-w.idle:
		case <-t.C:
			if !worked {
				return
			}
			worked = false
			t.Reset(writerLinger)
			goto wait
		}
	}
}

// entry is one event in the history.
type entry struct {
	id   string
	wire []byte
	at   time.Time
}

// subscription is an EventSource's place in a Stream: the sequence number of the next event
// it has to write. Only the EventSource's writer moves it.
type subscription struct {
	stream *Stream
	next   atomic.Uint64
}

// NewStream returns an empty Stream.
func NewStream(opts *StreamOptions) *Stream {
	var o StreamOptions
	if opts != nil {
		o = *opts
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = defaultHistoryLimit
	}
	if o.HistoryBytes <= 0 {
		o.HistoryBytes = defaultHistoryBytes
	}
	if o.GapEvent == "" {
		o.GapEvent = defaultGapEvent
	}
	s := &Stream{
		limit:    o.HistoryLimit,
		maxBytes: o.HistoryBytes,
		maxAge:   o.HistoryAge,
		gapType:  o.GapEvent,
		nextID:   1,
		subs:     make(map[*EventSource]int),
		writers:  writers{idle: make(chan *EventSource)},
	}
	if o.Broker != nil {
		s.misuse = errNewStreamBroker
	}
	return s
}

// Publish appends an event to the history and sends it to every subscriber, without waiting
// for any of them. It returns the event's id: ev.ID, or the one assigned when that is empty.
// It returns a *FieldError for an id or type with CR, LF or NUL (StreamOptions.GapEvent's type
// is reserved) and ErrClosed after Close. Events are delivered in the order Publish calls
// return.
func (s *Stream) Publish(data string, ev Event) (string, error) {
	if ev.Type != "" && ev.Type == s.gapType {
		return "", &FieldError{Field: "event", Value: ev.Type}
	}
	switch {
	case s.misuse != nil:
		return "", s.misuse
	case s.shared != nil:
		return s.shared.publish(data, ev)
	}
	auto := ev.ID == ""
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	if auto {
		ev.ID = strconv.FormatUint(s.nextID, 10)
	}
	wire, err := encode(data, ev)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	if auto {
		s.nextID++
	}
	s.appendLocked(ev.ID, wire)
	return ev.ID, nil
}

// appendLocked appends an event to the history and starts delivering it. s.mu is held, and
// released.
func (s *Stream) appendLocked(id string, wire []byte) {
	now := time.Now()
	s.log = append(s.log, entry{id: id, wire: wire, at: now})
	s.bytes += len(wire)
	s.lastID = id
	s.evict(now)
	if s.delivering {
		// The round under way, or the one it starts next, brings this event too.
		s.again = true
		s.mu.Unlock()
		return
	}
	s.delivering = true
	subs, first := s.snapshotLocked(), s.first
	s.mu.Unlock()
	go s.deliver(subs, first)
}

// snapshotLocked returns the subscribers as a slice that stays as it is, copied again only
// after they change. They are in about the order they subscribed, which is the order their
// connections and structures were made in: going through them in that order is kinder to
// the caches, on both ends, than a map's. s.mu is held.
func (s *Stream) snapshotLocked() []*EventSource {
	if s.snap == nil && len(s.list) > 0 {
		s.snap = slices.Clone(s.list)
	}
	return s.snap
}

// deliverChunk is how many subscribers a deliverer takes at a time.
const deliverChunk = 64

// deliver brings every subscriber up to date, in rounds: one per Publish, or one for all the
// Publish calls made while the round before ran. The order of events is fixed by the history,
// so no lock is held meanwhile, and other publishers and the writers reading the history are
// not held up. A round is shared by up to GOMAXPROCS goroutines, this one included; each
// writes to its subscribers without waiting for any client (see EventSource.startWriter), so
// none waits for another.
func (s *Stream) deliver(subs []*EventSource, first uint64) {
	for {
		n := len(subs)
		var next atomic.Int64
		work := func() {
			var scratch [][]byte
			for {
				i := int(next.Add(deliverChunk)) - deliverChunk
				if i >= n {
					return
				}
				for _, es := range subs[i:min(i+deliverChunk, n)] {
					scratch = es.wake(s, first, scratch)
				}
			}
		}
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), (n+deliverChunk-1)/deliverChunk) - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()

		s.mu.Lock()
		if !s.again || s.closed {
			s.delivering, s.again = false, false
			s.mu.Unlock()
			return
		}
		s.again = false
		subs, first = s.snapshotLocked(), s.first
		s.mu.Unlock()
	}
}

// evict drops events past any bound of the history. The newest event stays while it fits
// the count and age bounds even if it alone is over HistoryBytes, so that subscribers get it.
func (s *Stream) evict(now time.Time) {
	n := 0
	for n < len(s.log) {
		e := &s.log[n]
		over := len(s.log)-n > s.limit ||
			(s.bytes > s.maxBytes && len(s.log)-n > 1) ||
			(s.maxAge > 0 && now.Sub(e.at) > s.maxAge)
		if !over {
			break
		}
		s.bytes -= len(e.wire)
		s.dropped = e.id
		*e = entry{}
		n++
	}
	if n > 0 {
		s.log = s.log[n:]
		s.first += uint64(n)
		if len(s.log) == 0 {
			s.log = nil // let the old array go
		}
	}
}

// Subscribe adds es to the stream, resuming after es.LastEventID(): see Stream for how the
// history is replayed and how a gap is signalled. It returns ErrClosed after Close and
// ErrSubscribed when es is already on a Stream. es leaves the Stream by itself when it ends.
func (s *Stream) Subscribe(es *EventSource) error {
	return s.SubscribeFrom(es, es.LastEventID())
}

// SubscribeFrom is Subscribe resuming after lastEventID instead of es.LastEventID(): an empty
// one receives only events published from now on.
func (s *Stream) SubscribeFrom(es *EventSource, lastEventID string) error {
	switch {
	case s.misuse != nil:
		return s.misuse
	case s.shared != nil:
		return s.shared.subscribeFrom(es, lastEventID)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.evict(time.Now())
	next, gap := s.resume(lastEventID)
	es.meterResume(lastEventID != "", gap)
	var prefix [][]byte
	if gap {
		prefix = [][]byte{s.gapWire(lastEventID, s.dropped)}
	}
	return s.subscribeLocked(es, next, prefix)
}

// gapWire is the gap event for a client that resumed from lastEventID: its id is last, the
// id of the newest event before those the client gets next.
func (s *Stream) gapWire(lastEventID, last string) []byte {
	w, _ := encode(lastEventID, Event{Type: s.gapType, ID: last})
	if last == "" {
		// An empty id field resets the client's last event id: nothing before the history
		// exists, so a client that drops again starts afresh with the history it has.
		w = append([]byte("id\n"), w...)
	}
	return w
}

// subscribeLocked adds es to the stream, starting at the event numbered next, after
// prefix (written first, bypassing the queue limit: a gap event, a replay). s.mu is held, and
// released.
func (s *Stream) subscribeLocked(es *EventSource, next uint64, prefix [][]byte) error {
	es.mu.Lock()
	if es.closed || es.sub != nil {
		closed := es.closed
		es.mu.Unlock()
		s.mu.Unlock()
		if closed {
			return ErrClosed
		}
		return ErrSubscribed
	}
	es.sub = &subscription{stream: s}
	es.sub.next.Store(next)
	if len(prefix) > 0 {
		// Ahead of anything queued, bypassing the queue limit: it comes before the replay.
		es.queue = append(slices.Clip(prefix), es.queue...)
		for _, b := range prefix {
			es.queued += len(b)
		}
	}
	start := es.notifyLocked()
	es.mu.Unlock()
	s.subs[es] = len(s.list)
	s.list = append(s.list, es)
	s.snap = nil
	s.mu.Unlock()
	if start { // the replay, and what was queued
		es.startWriter(nil)
	}
	return nil
}

// resume returns the sequence number to start from after lastEventID, and whether events may
// have been missed that the history cannot give.
func (s *Stream) resume(lastEventID string) (next uint64, gap bool) {
	end := s.first + uint64(len(s.log))
	switch lastEventID {
	case "":
		return end, false
	case s.lastID:
		return end, false
	case s.dropped:
		return s.first, false
	}
	for i := len(s.log) - 1; i >= 0; i-- {
		if s.log[i].id == lastEventID {
			return s.first + uint64(i) + 1, false
		}
	}
	return s.first, true
}

// read appends to batch the events after sub's place, at most maxBatch of them, and moves
// the place past them. more tells that others follow; lost that the next event has already
// left the history.
func (s *Stream) read(sub *subscription, batch [][]byte) (_ [][]byte, more, lost bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	next := sub.next.Load()
	if next < s.first {
		return batch, false, true
	}
	i := int(next - s.first)
	if i >= len(s.log) {
		return batch, false, false
	}
	j := min(len(s.log), i+maxBatch)
	for _, e := range s.log[i:j] {
		batch = append(batch, e.wire)
	}
	sub.next.Store(next + uint64(j-i))
	return batch, j < len(s.log), false
}

// Unsubscribe removes es from the stream; it stays open.
func (s *Stream) Unsubscribe(es *EventSource) {
	es.mu.Lock()
	if es.sub != nil && es.sub.stream == s {
		es.sub = nil
	}
	es.mu.Unlock()
	s.remove(es)
}

// remove forgets es.
func (s *Stream) remove(es *EventSource) {
	s.mu.Lock()
	if i, ok := s.subs[es]; ok {
		last := s.list[len(s.list)-1]
		s.list[i], s.subs[last] = last, i
		s.list[len(s.list)-1] = nil
		s.list = s.list[:len(s.list)-1]
		delete(s.subs, es)
		s.snap = nil
	}
	s.mu.Unlock()
}

// Len returns the number of subscribers.
func (s *Stream) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.subs)
}

// LastEventID returns the id of the newest event published, empty before the first.
func (s *Stream) LastEventID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastID
}

// Close ends every subscribed EventSource (their clients reconnect, see EventSource.Close)
// and makes Publish and Subscribe return ErrClosed. It does not wait for their writers.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	subs := s.list
	s.subs, s.list = map[*EventSource]int{}, nil
	s.snap = nil
	s.log = nil
	leave := s.leave
	s.leave = nil
	s.mu.Unlock()
	if leave != nil {
		leave()
	}
	for _, es := range subs {
		es.closeWith(nil)
	}
}

// wake tells es, one of s's subscribers, that s has new events; when no writer runs, the
// caller becomes es's writer (see startWriter) and scratch serves it. When es's next event
// has already left the history (it is older than first), es ends with ErrSlowClient instead,
// now (cutting a write that is stuck) rather than when its writer comes back.
func (es *EventSource) wake(s *Stream, first uint64, scratch [][]byte) [][]byte {
	es.mu.Lock()
	if es.sub == nil || es.sub.stream != s {
		es.mu.Unlock()
		return scratch
	}
	if es.sub.next.Load() < first {
		es.mu.Unlock()
		es.closeWith(ErrSlowClient)
		return scratch
	}
	start := es.notifyLocked()
	es.mu.Unlock()
	if start {
		return es.startWriter(scratch)
	}
	return scratch
}
