package nats

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/herald-go/herald/broker/brokertest"
)

// reading returns a Broker that was never connected, whose Handler is the returned Recorder:
// the test fills its queue and its discontinuity state by hand, then calls the returned run to
// start read, which stops when the test ends.
func reading(t *testing.T) (*Broker, *brokertest.Recorder, func()) {
	t.Helper()
	b := New("nats://127.0.0.1:1", nil)
	rec := brokertest.NewRecorder(t)
	b.h = rec
	run := func() {
		b.wg.Add(1)
		go b.read()
		t.Cleanup(func() {
			close(b.done)
			b.wg.Wait()
		})
	}
	return b, rec, run
}

// sent returns a message that node from sent to every node, as it arrives.
func sent(b *Broker, from, payload string) *natsgo.Msg {
	data := binary.AppendUvarint(nil, uint64(len(from)))
	data = append(append(data, from...), payload...)
	return &natsgo.Msg{Subject: b.allSubject, Data: data}
}

// TestDiscontinuityBeforeMessages: once reconnected has signalled the link's loss, a message
// already queued must not be handed over before the discontinuity, although select would pick
// the queue or the signal at random. Each round is a fresh Broker: a wrong order shows within
// a few rounds.
func TestDiscontinuityBeforeMessages(t *testing.T) {
	for range 32 {
		b, rec, run := reading(t)
		b.msgs <- sent(b, "a", "heard once the link was back")
		b.lostAll = errors.New("test: link lost and restored") // what reconnected does
		b.wake()
		run()
		rec.WaitFor(1, brokertest.FromNode("a"))
		if evs := rec.Events(); evs[0].Kind != "discontinuity" || evs[0].Topics != nil {
			t.Fatalf("heard %+v: want a discontinuity of every topic before the message", evs)
		}
	}
}

// TestLossReportedOnceTheLinkIsBack: a slow consumer's drops, signalled while the link is
// down, are reported at once, but the link's loss waits until the link is back (reconnected):
// a Handler told of it earlier would act on a link that is still down, and hear it twice.
func TestLossReportedOnceTheLinkIsBack(t *testing.T) {
	b, rec, run := reading(t)
	b.down = true
	b.lostAll = errors.New("test: link lost") // what disconnected does
	b.lost["t"] = struct{}{}                  // what asyncError does
	b.wake()
	run()
	evs := rec.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if !slices.Equal(evs[0].Topics, []string{"t"}) {
		t.Fatalf("while the link is down, heard a discontinuity of %q, want only the topic that dropped messages", evs[0].Topics)
	}
	b.mu.Lock()
	b.down = false // what reconnected does
	b.mu.Unlock()
	b.wake()
	evs = rec.WaitFor(2, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if evs[1].Topics != nil || evs[1].Err == nil {
		t.Errorf("once the link is back, heard %+v, want a discontinuity of every topic", evs[1])
	}
}
