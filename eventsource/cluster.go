package eventsource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-go/herald/broker"
)

// errNewStreamBroker is what a Stream made by NewStream with a Broker returns.
var errNewStreamBroker = errors.New("eventsource: StreamOptions.Broker is for JoinStream: NewStream makes a Stream of this process only")

// JoinStream returns a Stream named name that the nodes of a cluster share through
// opts.Broker, which is required and must keep history (broker/redis does, broker/nats does
// not: JoinStream then fails with an error wrapping broker.ErrHistoryUnsupported). It joins
// the broker's topic "s:"+name and leaves it on Close. Streams of one name on several nodes
// are one stream:
//
//   - Publish on any node goes through the broker, which numbers the event and appends it to
//     the topic's history (bounded by HistoryLimit events and HistoryAge); every node's Stream
//     then delivers it to its own subscribers, in the broker's order. Publish fails (and the
//     event is not sent) while the broker is unreachable; it never buffers.
//   - An event's id is its position in that history, "OFFSET:EPOCH", assigned by the broker:
//     Publish refuses an Event with an ID.
//   - Subscribe with a Last-Event-ID on any node replays exactly the events after it, from
//     the node's own copy of the recent history when it reaches back that far, or else from the
//     broker's history. When the broker's history does not reach back that far (trimmed,
//     expired), or was lost (a new epoch: Redis restarted without persistence), the client is
//     told with the gap event, as for a local Stream (see Stream), never left with a silent
//     hole.
//   - When the node misses events (its link to the broker was lost and is back, or an event
//     came out of sequence), its subscribers are disconnected: their clients reconnect with
//     their Last-Event-ID and get what they missed from the broker's history, or the gap event.
//     A subscriber that falls behind the node's copy (HistoryLimit, HistoryBytes) likewise
//     resumes from the broker's history.
//
// When the broker cannot be read, Subscribe ends es (its client reconnects later) and returns
// the error. HistoryBytes bounds only the node's copy.
//
// The Stream listens to the Node's discontinuities until Close, which also leaves the topic.
func JoinStream(ctx context.Context, name string, opts *StreamOptions) (*Stream, error) {
	if opts == nil || opts.Broker == nil {
		return nil, errors.New("eventsource: JoinStream needs StreamOptions.Broker (a started broker.Node)")
	}
	o := *opts
	o.Broker = nil
	s := NewStream(&o)
	node := opts.Broker
	reader, ok := node.Broker().(broker.HistoryReader)
	if !ok {
		return nil, fmt.Errorf("eventsource: stream %q: the broker keeps no history, so a client could not resume on another node (use broker/redis): %w", name, broker.ErrHistoryUnsupported)
	}
	timeout := opts.BrokerTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	sh := &shared{s: s, node: node, history: reader, topic: "s:" + name, timeout: timeout,
		policy: broker.HistoryPolicy{Size: s.limit, TTL: s.maxAge}}
	s.shared = sh
	unlisten := node.OnDiscontinuity(sh.discontinuity)
	leave, err := node.Join(ctx, sh.topic, sh.receive)
	if err != nil {
		unlisten()
		return nil, fmt.Errorf("eventsource: stream %q: %w", name, err)
	}
	s.mu.Lock()
	s.leave = func() { leave(); unlisten() }
	s.mu.Unlock()
	return s, nil
}

// shared is the cluster's side of a Stream made by JoinStream. The Stream's log is then this
// node's copy of the recent history, in the broker's order and without a hole: the event at
// sequence number baseSeq (see Stream.first) has offset baseOff in epoch, and each next one
// the next offset. Fields other than the constants are guarded by s.mu.
type shared struct {
	s       *Stream
	node    *broker.Node
	history broker.HistoryReader
	topic   string
	timeout time.Duration
	policy  broker.HistoryPolicy

	known   bool   // the fields below say where the log is; false until an event (or a history read) says
	epoch   string // the epoch of the log's events
	baseSeq uint64 // the sequence number of the event at offset baseOff
	baseOff uint64
	lastOff uint64 // the offset of the newest event received (or read): the next one is lastOff+1
}

// formatPosition returns the event id of a position in a broker's history: "OFFSET:EPOCH".
func formatPosition(p broker.Position) string {
	return strconv.FormatUint(p.Offset, 10) + ":" + p.Epoch
}

// parsePosition parses an event id that formatPosition made.
func parsePosition(id string) (broker.Position, bool) {
	i := strings.IndexByte(id, ':')
	if i <= 0 || i == len(id)-1 {
		return broker.Position{}, false
	}
	off, err := strconv.ParseUint(id[:i], 10, 64)
	if err != nil || off == 0 {
		return broker.Position{}, false
	}
	return broker.Position{Epoch: id[i+1:], Offset: off}, true
}

func (sh *shared) publish(data string, ev Event) (string, error) {
	if ev.ID != "" {
		return "", errors.New("eventsource: a Stream made by JoinStream gives each event its position in the broker's history as its id: leave Event.ID empty")
	}
	sh.s.mu.RLock()
	closed := sh.s.closed
	sh.s.mu.RUnlock()
	if closed {
		return "", ErrClosed
	}
	wire, err := encode(data, Event{Type: ev.Type})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
	defer cancel()
	policy := sh.policy
	pos, err := sh.node.Publish(ctx, sh.topic, wire, broker.PublishOptions{History: &policy})
	if err != nil {
		return "", fmt.Errorf("eventsource: publish to %q: %w", sh.topic, err)
	}
	return formatPosition(pos), nil
}

// receive takes an event the broker delivers (this node's publications included), in order.
func (sh *shared) receive(payload []byte, pos broker.Position) {
	if pos.IsZero() || len(payload) < 2 || string(payload[len(payload)-2:]) != "\n\n" {
		return // not a Stream's event: published without history, or by something else
	}
	s := sh.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	var cut []*EventSource
	switch {
	case sh.known && pos.Epoch == sh.epoch && pos.Offset <= sh.lastOff:
		s.mu.Unlock()
		return // already had (read from the history by a resume)
	case sh.known && pos.Epoch == sh.epoch && pos.Offset == sh.lastOff+1:
	default:
		// The first event, or one after a hole (events lost on the way) or of a new epoch:
		// the log starts again here, and the subscribers, who may have missed events, resume
		// from the broker's history.
		if sh.known {
			cut = sh.restartLocked()
		}
		sh.known, sh.epoch = true, pos.Epoch
		sh.baseSeq, sh.baseOff = s.first+uint64(len(s.log)), pos.Offset
	}
	sh.lastOff = pos.Offset
	id := formatPosition(pos)
	wire := make([]byte, 0, len(id)+5+len(payload))
	wire = append(append(append(append(wire, "id: "...), id...), '\n'), payload...)
	s.appendLocked(id, wire) // unlocks
	for _, es := range cut {
		es.closeWith(nil)
	}
}

// restartLocked empties the log and returns the subscribers, to be disconnected: events may
// be missing after what they have. s.mu is held.
func (sh *shared) restartLocked() []*EventSource {
	s := sh.s
	if n := len(s.log); n > 0 {
		s.dropped = s.log[n-1].id
		s.first += uint64(n)
		clear(s.log)
		s.log, s.bytes = nil, 0
	}
	sh.known = false
	subs := s.list
	s.subs, s.list, s.snap = map[*EventSource]int{}, nil, nil
	for _, es := range subs {
		es.mu.Lock()
		if es.sub != nil && es.sub.stream == s {
			es.sub = nil
		}
		es.mu.Unlock()
	}
	return subs
}

// discontinuity hears that the node's link to the broker was lost and is back: events may
// have been missed.
func (sh *shared) discontinuity(topics []string, _ error) {
	if topics != nil && !slices.Contains(topics, sh.topic) {
		return
	}
	s := sh.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	cut := sh.restartLocked()
	s.mu.Unlock()
	for _, es := range cut {
		es.closeWith(nil)
	}
}

// maxHistoryReads bounds the reads of the broker's history for one resume.
const maxHistoryReads = 8

// subscribeFrom resumes es after lastEventID: from the log when it reaches back that far,
// else from the broker's history and then the log (brokers.md, "Resuming from
// Last-Event-ID"): the node is subscribed all along, so events published while the history
// is read reach the log; the replay stops where the log takes over, and what the log has that
// the replay already gave is skipped.
func (sh *shared) subscribeFrom(es *EventSource, lastEventID string) error {
	s := sh.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.evict(time.Now())
	end := s.first + uint64(len(s.log))
	if lastEventID == "" {
		return s.subscribeLocked(es, end, nil)
	}
	hit := func() { es.meterResume(true, false) }
	from, ok := parsePosition(lastEventID)
	if !ok {
		return sh.gapLocked(es, lastEventID)
	}
	if sh.known && from.Epoch == sh.epoch && from.Offset+1 >= sh.baseOff && from.Offset <= sh.lastOff {
		if next := sh.baseSeq + (from.Offset + 1 - sh.baseOff); next >= s.first {
			hit()
			return s.subscribeLocked(es, next, nil)
		}
	}
	s.mu.Unlock()

	// Read the broker's history after the client's position, until it meets the log.
	var replay [][]byte
	after := from
	for range maxHistoryReads {
		ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
		recs, latest, err := sh.history.History(ctx, sh.topic, after, s.limit)
		cancel()
		switch {
		case errors.Is(err, broker.ErrEpochChanged) || errors.Is(err, broker.ErrTrimmed):
			s.mu.Lock()
			return sh.gapLocked(es, lastEventID)
		case err != nil:
			es.closeWith(nil) // the client comes back, and the broker may be back too
			return fmt.Errorf("eventsource: resume %q from the broker's history: %w", lastEventID, err)
		}
		if latest.Epoch != from.Epoch || latest.Offset < from.Offset {
			s.mu.Lock()
			return sh.gapLocked(es, lastEventID) // the client's position was never published
		}
		for _, r := range recs {
			if r.Pos.Epoch != from.Epoch || r.Pos.Offset != after.Offset+1 {
				s.mu.Lock()
				return sh.gapLocked(es, lastEventID) // a hole in the history
			}
			id := formatPosition(r.Pos)
			w := make([]byte, 0, len(id)+5+len(r.Payload))
			replay = append(replay, append(append(append(append(w, "id: "...), id...), '\n'), r.Payload...))
			after = r.Pos
		}

		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if !sh.known || sh.epoch != from.Epoch {
			// The log has no event of this epoch yet: it starts after what was read, and
			// events up to there that arrive are dropped as already had.
			if sh.known {
				cut := sh.restartLocked()
				defer func() {
					for _, c := range cut {
						c.closeWith(nil)
					}
				}()
			}
			if len(recs) == s.limit && after.Offset < latest.Offset {
				s.mu.Unlock()
				continue // more to read first
			}
			end := s.first + uint64(len(s.log))
			sh.known, sh.epoch = true, from.Epoch
			sh.baseSeq, sh.baseOff, sh.lastOff = end, after.Offset+1, after.Offset
			hit()
			return s.subscribeLocked(es, end, replay)
		}
		if after.Offset+1 >= sh.baseOff {
			// The replay meets the log: go on from the event after it.
			next := sh.baseSeq + (after.Offset + 1 - sh.baseOff)
			if next < s.first {
				s.mu.Unlock()
				continue // the log moved on meanwhile (its bounds): read on
			}
			hit()
			return s.subscribeLocked(es, next, replay)
		}
		s.mu.Unlock()
		if len(recs) == 0 {
			s.mu.Lock()
			return sh.gapLocked(es, lastEventID)
		}
	}
	s.mu.Lock()
	return sh.gapLocked(es, lastEventID)
}

// gapLocked subscribes es after a gap event: the client's position cannot be resumed. The
// client then gets the log, as after a gap on a local Stream. s.mu is held, and released.
func (sh *shared) gapLocked(es *EventSource, lastEventID string) error {
	s := sh.s
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	last := ""
	if sh.known && s.first > sh.baseSeq {
		last = formatPosition(broker.Position{Epoch: sh.epoch, Offset: sh.baseOff + (s.first - sh.baseSeq) - 1})
	}
	es.meterResume(true, true)
	return s.subscribeLocked(es, s.first, [][]byte{s.gapWire(lastEventID, last)})
}
