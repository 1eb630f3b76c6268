package redis

import (
	"errors"
	"testing"

	"github.com/redis/rueidis"

	"github.com/herald-go/herald/broker/brokertest"
)

// workOn returns a partition with no connection, subscribed to topic, whose Handler is the
// returned Recorder: the test fills its queue and its discontinuity state by hand, then calls
// the returned run to start work, which stops when the test ends.
func workOn(t *testing.T, topic string) (*partition, *brokertest.Recorder, func()) {
	t.Helper()
	o, err := Options{Addrs: []string{"127.0.0.1:1"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder(t)
	b := &Broker{opts: o, h: rec}
	stop := make(chan struct{})
	p := newPartition(b, 0, stop, nil)
	p.topics[topic] = struct{}{}
	run := func() {
		b.wg.Add(1)
		go p.work()
		t.Cleanup(func() {
			close(stop)
			b.wg.Wait()
		})
	}
	return p, rec, run
}

// heardOn returns a message on topic as the connection of generation gen heard it.
func heardOn(p *partition, gen uint64, topic, payload string) heard {
	return heard{gen: gen, msg: rueidis.PubSubMessage{Channel: p.b.name(p.idx, kindTopic, topic), Message: "p" + payload}}
}

// expectDiscontinuityFirst waits for the message and checks that a discontinuity came before.
func expectDiscontinuityFirst(t *testing.T, rec *brokertest.Recorder, topic string) {
	t.Helper()
	rec.WaitFor(1, brokertest.OnTopic(topic))
	evs := rec.Events()
	if evs[0].Kind != "discontinuity" || evs[0].Topics != nil || evs[0].Err == nil {
		t.Fatalf("heard %+v: want a discontinuity of every topic, with its error, before the message", evs)
	}
}

var errTestLoss = errors.New("test: link lost")

// TestHeldForTheFirstConnectionSinceTheLoss: supervise holds the loss for each connection it
// makes until one is subscribed. A connection whose subscriptions failed halfway may have
// heard a message already: a second hold must not let it through before the discontinuity.
func TestHeldForTheFirstConnectionSinceTheLoss(t *testing.T) {
	p, rec, run := workOn(t, "t")
	p.hold(1, errTestLoss) // connection 1: subscribed to some channels, then failed
	p.hold(2, errTestLoss) // connection 2
	p.queue <- heardOn(p, 1, "t", "heard on connection 1")
	run()
	expectDiscontinuityFirst(t, rec, "t")
}

// TestReleasedDiscontinuityBeforeMessages: once supervise has released the held loss (the
// new connection is subscribed) and woken work, a message already queued from the new
// connection must not be handed over before the discontinuity, although select would pick the
// queue or the wake-up at random. Each round is a fresh partition: a wrong order shows within
// a few rounds.
func TestReleasedDiscontinuityBeforeMessages(t *testing.T) {
	for range 32 {
		p, rec, run := workOn(t, "t")
		p.hold(1, errTestLoss)
		p.queue <- heardOn(p, 1, "t", "heard on the new connection")
		if !p.unhold(1) { // what supervise does once connection 1 is subscribed
			t.Fatal("unhold found nothing held")
		}
		p.wake()
		run()
		expectDiscontinuityFirst(t, rec, "t")
	}
}

// TestDroppedNodeMessage: a full queue drops a node's message (Send) as any other, and counts
// it, but it belongs to no topic: the Handler is not told that every topic had a gap (herald
// would close every socket with Options.CloseOnDiscontinuity). A topic's message dropped next
// is a discontinuity on that topic alone.
func TestDroppedNodeMessage(t *testing.T) {
	p, rec, run := workOn(t, "t")
	p.b.node = "me"
	for range cap(p.queue) {
		p.queue <- heardOn(p, 0, "t", "queued")
	}
	p.onMessage(0, rueidis.PubSubMessage{Channel: p.b.name(0, kindAll, ""), Message: envelopeNode("other", []byte("request"))})
	if p.b.Dropped() != 1 || p.pending.Load() {
		t.Fatalf("a dropped node message: Dropped() = %d, discontinuity pending %v; want 1, false", p.b.Dropped(), p.pending.Load())
	}
	p.onMessage(0, heardOn(p, 0, "t", "dropped").msg)
	run()
	evs := rec.WaitFor(1, func(ev brokertest.Event) bool { return ev.Kind == "discontinuity" })
	if len(evs[0].Topics) != 1 || evs[0].Topics[0] != "t" {
		t.Errorf("discontinuity of %q, want of t alone", evs[0].Topics)
	}
}
