package nats

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/internal/testpeers"
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

// TestLossReportedBeforeTheNewConnectionsMessages: nats.go sends the subscriptions again and
// hears messages before reconnected has confirmed them (the link still counts as down). A
// message taken then may have been published after the loss: the loss is reported before it,
// and reconnected does not report it again.
func TestLossReportedBeforeTheNewConnectionsMessages(t *testing.T) {
	srv := testpeers.StartNATS(t)
	nc, err := natsgo.Connect(srv.URL()) // reconnected, from nats.go's point of view
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, rec, run := reading(t)
	b.nc = nc
	b.down = true
	b.lostAll = errors.New("test: link lost") // what disconnected does
	b.msgs <- sent(b, "a", "heard before reconnected ran")
	run()
	rec.WaitFor(1, brokertest.FromNode("a"))
	if evs := rec.Events(); evs[0].Kind != "discontinuity" || evs[0].Topics != nil {
		t.Fatalf("heard %+v: want a discontinuity of every topic before the message", evs)
	}
	b.reconnected(nc)
	if err := b.Err(); err != nil {
		t.Fatalf("Err after reconnected: %v", err)
	}
	b.msgs <- sent(b, "a", "heard after reconnected ran")
	rec.WaitFor(2, brokertest.FromNode("a"))
	if evs := rec.Filter(func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" }); len(evs) != 1 {
		t.Errorf("heard %d discontinuities, want the loss reported once: %+v", len(evs), evs)
	}
}
