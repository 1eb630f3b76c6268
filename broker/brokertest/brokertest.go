// Package brokertest is the conformance suite that every broker.Broker passes. A broker's own
// tests call Run with a function that links a fresh set of nodes to a real engine:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) brokertest.Factory {
//			srv := startServer(t)
//			return brokertest.Factory{
//				New:     func(t *testing.T) broker.Broker { return mybroker.New(srv.Addr(), nil) },
//				Kill:    func(t *testing.T) { srv.Kill() },
//				Restart: func(t *testing.T) { srv.Restart() },
//			}
//		})
//	}
//
// The suite checks what package broker promises: order per topic per publisher, a node hears
// its own publications, subscribing is idempotent and unsubscribing stops delivery, Send
// reaches one node or all, the Handler is not called once Close has returned, history
// positions and their errors (when the broker is a broker.HistoryReader), leases (when it is a
// broker.Leaser), fast failure while the engine is down and a discontinuity once it is back,
// before the messages published since (when the Factory can kill and restart it). It also
// runs broker.Node over the broker: reference-counted topics, requests and surveys.
//
// Every case names its topics, sets and nodes from random strings, so a Factory may also hand
// out links to one shared engine.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
)

// Factory links nodes to one engine for one case of the suite.
type Factory struct {
	// New returns a new, unstarted Broker linked to the same engine as the others this Factory
	// returned. The suite starts and closes it.
	New func(t *testing.T) broker.Broker
	// Kill stops the engine (as SIGKILL would). Nil skips the cases that need it.
	Kill func(t *testing.T)
	// Restart starts the engine again after Kill, at the same address. Nil skips the cases
	// that need it.
	Restart func(t *testing.T)
}

// Run runs the suite. newFactory is called once per case, with that case's t, so each case
// may have an engine of its own (and Kill in one case does not disturb the others).
func Run(t *testing.T, newFactory func(t *testing.T) Factory) {
	cases := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"PublishOrder", testPublishOrder},
		{"OwnPublications", testOwnPublications},
		{"SubscribeIdempotent", testSubscribeIdempotent},
		{"Unsubscribe", testUnsubscribe},
		{"SendOne", testSendOne},
		{"SendAll", testSendAll},
		{"SeveralPublishers", testSeveralPublishers},
		{"ArbitraryTopics", testArbitraryTopics},
		{"Payloads", testPayloads},
		{"Close", testClose},
		{"CloseStopsHandler", testCloseStopsHandler},
		{"History", testHistory},
		{"HistoryTrimmed", testHistoryTrimmed},
		{"HistoryUnsupported", testHistoryUnsupported},
		{"Leases", testLeases},
		{"LeaseExpiry", testLeaseExpiry},
		{"FailFast", testFailFast},
		{"Discontinuity", testDiscontinuity},
		{"StartAgain", testStartAgain},
		{"NodeRefCount", testNodeRefCount},
		{"NodeRequests", testNodeRequests},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newFactory(t))
		})
	}
}

// wait bounds every wait of the suite.
const wait = 10 * time.Second

// Event is what a Recorder heard.
type Event struct {
	Kind    string // "message", "node" or "discontinuity"
	Topic   string // message: the topic; node: the sender
	Payload string
	Pos     broker.Position
	Topics  []string // discontinuity
	Err     error    // discontinuity
}

// Recorder is a broker.Handler that keeps what it hears, up to 100,000 events (more fail
// the test when it ends, or in WaitFor). Its methods are safe for concurrent use.
type Recorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []Event
	full   bool // events were dropped: the test fails
	more   chan struct{}
}

// maxEvents bounds a Recorder.
const maxEvents = 100000

// NewRecorder returns an empty Recorder, which fails t when it ends if the Recorder
// overflowed.
func NewRecorder(t testing.TB) *Recorder {
	r := &Recorder{t: t, more: make(chan struct{}, 1)}
	t.Cleanup(func() {
		if r.overflowed() {
			t.Errorf("brokertest: recorder full (%d events): later events were dropped", maxEvents)
		}
	})
	return r
}

func (r *Recorder) overflowed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full
}

// add keeps ev. It runs on the broker's goroutines, which must not call r.t (a test that has
// ended panics when they do): an overflow is reported by the test's own goroutine.
func (r *Recorder) add(ev Event) {
	r.mu.Lock()
	if len(r.events) >= maxEvents {
		r.full = true
		r.mu.Unlock()
		return
	}
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// HandleMessage implements broker.Handler.
func (r *Recorder) HandleMessage(topic string, payload []byte, pos broker.Position) {
	r.add(Event{Kind: "message", Topic: topic, Payload: string(payload), Pos: pos})
}

// HandleNode implements broker.Handler.
func (r *Recorder) HandleNode(from string, payload []byte) {
	r.add(Event{Kind: "node", Topic: from, Payload: string(payload)})
}

// HandleDiscontinuity implements broker.Handler.
func (r *Recorder) HandleDiscontinuity(topics []string, err error) {
	r.add(Event{Kind: "discontinuity", Topics: slices.Clone(topics), Err: err})
}

// Events returns a copy of what the recorder heard, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Filter returns the events that keep returns true for.
func (r *Recorder) Filter(keep func(Event) bool) []Event {
	var out []Event
	for _, ev := range r.Events() {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// WaitFor waits until keep holds for n events, and returns them; it fails the test after 10
// seconds.
func (r *Recorder) WaitFor(n int, keep func(Event) bool) []Event {
	r.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		if r.overflowed() {
			r.t.Fatalf("brokertest: recorder full (%d events): later events were dropped", maxEvents)
		}
		if evs := r.Filter(keep); len(evs) >= n {
			return evs
		}
		select {
		case <-r.more:
		case <-deadline.C:
			evs := r.Filter(keep)
			r.t.Fatalf("brokertest: heard %d of %d events within %v: %v", len(evs), n, wait, evs)
			return nil
		}
	}
}

// OnTopic keeps the messages of one topic.
func OnTopic(topic string) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == "message" && ev.Topic == topic }
}

// FromNode keeps what one node sent with Send.
func FromNode(node string) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == "node" && ev.Topic == node }
}

func isDiscontinuity(ev Event) bool { return ev.Kind == "discontinuity" }

// Unique returns prefix followed by random hex, for names that no other case uses.
func Unique(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// node is one started broker of a case.
type node struct {
	name string
	b    broker.Broker
	rec  *Recorder
}

// start makes and starts n brokers, closed when the case ends.
func start(t *testing.T, f Factory, n int) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nd := &node{name: Unique(fmt.Sprintf("node%d-", i)), b: f.New(t), rec: NewRecorder(t)}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		err := nd.b.Start(ctx, nd.name, nd.rec)
		cancel()
		if err != nil {
			t.Fatalf("Start(%s): %v", nd.name, err)
		}
		t.Cleanup(func() {
			if err := nd.b.Close(); err != nil {
				t.Errorf("Close(%s): %v", nd.name, err)
			}
		})
		nodes[i] = nd
	}
	return nodes
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func subscribe(t *testing.T, nd *node, topics ...string) {
	t.Helper()
	if err := nd.b.Subscribe(ctxT(t), topics...); err != nil {
		t.Fatalf("Subscribe(%s, %q): %v", nd.name, topics, err)
	}
}

func publish(t *testing.T, nd *node, topic, payload string) broker.Position {
	t.Helper()
	pos, err := nd.b.Publish(ctxT(t), topic, []byte(payload), broker.PublishOptions{})
	if err != nil {
		t.Fatalf("Publish(%s, %q): %v", nd.name, topic, err)
	}
	if !pos.IsZero() {
		t.Errorf("Publish without history returned position %+v, want zero", pos)
	}
	return pos
}

func payloads(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Payload
	}
	return out
}

func expectPayloads(t *testing.T, who string, got []Event, want []string) {
	t.Helper()
	if g := payloads(got); !slices.Equal(g, want) {
		t.Fatalf("%s heard %d messages %q, want %d %q", who, len(g), short(g), len(want), short(want))
	}
}

func short(s []string) []string {
	if len(s) > 12 {
		return append(slices.Clip(s[:12]), "…")
	}
	return s
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// settle is how long a case waits to see that something does not arrive: it cannot make a
// case fail wrongly, only miss a fault.
const settle = 100 * time.Millisecond

func testPublishOrder(t *testing.T, f Factory) {
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic := Unique("order/")
	subscribe(t, a, topic)
	subscribe(t, b, topic)
	want := seq("m", 500)
	for _, p := range want {
		publish(t, a, topic, p)
	}
	expectPayloads(t, "b", b.rec.WaitFor(len(want), OnTopic(topic)), want)
	expectPayloads(t, "a", a.rec.WaitFor(len(want), OnTopic(topic)), want)
}

func testOwnPublications(t *testing.T, f Factory) {
	nodes := start(t, f, 1)
	a := nodes[0]
	topic := Unique("own/")
	// A context without a deadline is fine too: the broker bounds its own waits.
	if err := a.b.Subscribe(context.Background(), topic); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := a.b.Publish(context.Background(), topic, []byte("hello"), broker.PublishOptions{}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	evs := a.rec.WaitFor(1, OnTopic(topic))
	expectPayloads(t, "a", evs, []string{"hello"})
	if !evs[0].Pos.IsZero() {
		t.Errorf("a message published without history was heard at %+v, want zero", evs[0].Pos)
	}
}

func testSubscribeIdempotent(t *testing.T, f Factory) {
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic := Unique("twice/")
	subscribe(t, b, topic)
	subscribe(t, b, topic, topic)
	publish(t, a, topic, "one")
	publish(t, a, topic, "two")
	b.rec.WaitFor(2, OnTopic(topic))
	time.Sleep(settle)
	expectPayloads(t, "b", b.rec.Filter(OnTopic(topic)), []string{"one", "two"})
	// One Unsubscribe undoes any number of Subscribes.
	if err := b.b.Unsubscribe(ctxT(t), topic); err != nil {
		t.Fatal(err)
	}
	witness := Unique("witness/")
	subscribe(t, a, topic)
	subscribe(t, b, witness)
	publish(t, a, topic, "three")
	publish(t, a, witness, "w")
	a.rec.WaitFor(1, OnTopic(topic))
	b.rec.WaitFor(1, OnTopic(witness))
	time.Sleep(settle)
	expectPayloads(t, "b", b.rec.Filter(OnTopic(topic)), []string{"one", "two"})
}

func testUnsubscribe(t *testing.T, f Factory) {
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic, other := Unique("unsub/"), Unique("other/")
	subscribe(t, a, topic)
	subscribe(t, b, topic, other)
	publish(t, a, topic, "before")
	b.rec.WaitFor(1, OnTopic(topic))
	if err := b.b.Unsubscribe(ctxT(t), topic); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	// Unsubscribing from a topic never subscribed is no error.
	if err := b.b.Unsubscribe(ctxT(t), Unique("never/")); err != nil {
		t.Fatalf("Unsubscribe of a topic never subscribed: %v", err)
	}
	publish(t, a, topic, "after")
	publish(t, a, other, "still")
	a.rec.WaitFor(2, OnTopic(topic))
	expectPayloads(t, "b", b.rec.WaitFor(1, OnTopic(other)), []string{"still"})
	time.Sleep(settle)
	expectPayloads(t, "b", b.rec.Filter(OnTopic(topic)), []string{"before"})
}

func testSendOne(t *testing.T, f Factory) {
	nodes := start(t, f, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	want := seq("to-b-", 100)
	for _, p := range want {
		if err := a.b.Send(ctxT(t), b.name, []byte(p)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	expectPayloads(t, "b", b.rec.WaitFor(len(want), FromNode(a.name)), want)
	// c and a hear nothing: a marker sent to each after the others shows that.
	for _, nd := range []*node{a, c} {
		if err := b.b.Send(ctxT(t), nd.name, []byte("marker")); err != nil {
			t.Fatal(err)
		}
		nd.rec.WaitFor(1, FromNode(b.name))
	}
	time.Sleep(settle)
	for _, nd := range []*node{a, c} {
		if evs := nd.rec.Filter(func(ev Event) bool { return ev.Kind == "node" && ev.Payload != "marker" }); len(evs) != 0 {
			t.Errorf("%s heard what was sent to b: %v", nd.name, evs)
		}
	}
}

func testSendAll(t *testing.T, f Factory) {
	nodes := start(t, f, 3)
	a := nodes[0]
	want := seq("all-", 50)
	for _, p := range want {
		if err := a.b.Send(ctxT(t), "", []byte(p)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	for _, nd := range nodes {
		expectPayloads(t, nd.name, nd.rec.WaitFor(len(want), FromNode(a.name)), want)
	}
	// Sending to a node that does not exist is no error: the message is lost, as any
	// message to a node that just died.
	if err := a.b.Send(ctxT(t), Unique("nobody-"), []byte("x")); err != nil {
		t.Errorf("Send to an unknown node: %v", err)
	}
}

func testSeveralPublishers(t *testing.T, f Factory) {
	nodes := start(t, f, 3)
	topic := Unique("many/")
	for _, nd := range nodes {
		subscribe(t, nd, topic)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				if _, err := nd.b.Publish(context.Background(), topic, fmt.Appendf(nil, "%d:%d", i, j), broker.PublishOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	for _, nd := range nodes {
		evs := nd.rec.WaitFor(n*len(nodes), OnTopic(topic))
		next := make([]int, len(nodes))
		for _, ev := range evs {
			var i, j int
			if _, err := fmt.Sscanf(ev.Payload, "%d:%d", &i, &j); err != nil || i < 0 || i >= len(nodes) {
				t.Fatalf("%s heard %q", nd.name, ev.Payload)
			}
			if j != next[i] {
				t.Fatalf("%s heard %d:%d after %d:%d: order per publisher broken", nd.name, i, j, i, next[i]-1)
			}
			next[i]++
		}
	}
}

func testArbitraryTopics(t *testing.T, f Factory) {
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	base := Unique("x")
	topics := []string{
		base, base + ".dot", base + " space", base + "*", base + ">", base + "/a/{b}", base + "%2E",
		base + "é∂", base + "\x00\n\t", base + "a.b.c", base + ".", "." + base, base + "..",
	}
	subscribe(t, b, topics...)
	subscribe(t, a, topics[0])
	for _, tp := range topics {
		publish(t, a, tp, "on "+tp)
	}
	for _, tp := range topics {
		expectPayloads(t, "b on "+fmt.Sprintf("%q", tp), b.rec.WaitFor(1, OnTopic(tp)), []string{"on " + tp})
	}
	// a subscribed to base alone: the topics that extend it (with a dot, a star...) must
	// not reach it through a wildcard.
	a.rec.WaitFor(1, OnTopic(topics[0]))
	time.Sleep(settle)
	if evs := a.rec.Filter(func(ev Event) bool { return ev.Kind == "message" }); len(evs) != 1 {
		t.Errorf("a subscribed to %q and heard %v", topics[0], evs)
	}
}

func testClose(t *testing.T, f Factory) {
	nodes := start(t, f, 1)
	a := nodes[0]
	if err := a.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := a.b.Publish(ctxT(t), "x", nil, broker.PublishOptions{}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := a.b.Subscribe(ctxT(t), "x"); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := a.b.Send(ctxT(t), "", nil); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := a.b.Err(); err == nil {
		t.Errorf("Err after Close is nil")
	}
}

// testCloseStopsHandler checks that the Handler is not called once Close has returned, while
// another node keeps publishing to the closed one's topic.
func testCloseStopsHandler(t *testing.T, f Factory) {
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic := Unique("closing/")
	subscribe(t, b, topic)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := a.b.Publish(context.Background(), topic, fmt.Appendf(nil, "%d", i), broker.PublishOptions{}); err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	b.rec.WaitFor(10, OnTopic(topic))
	if err := b.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	heard := len(b.rec.Events())
	time.Sleep(settle)
	if n := len(b.rec.Events()); n != heard {
		t.Errorf("the Handler was called %d times after Close returned", n-heard)
	}
}

func historyOf(t *testing.T, f Factory, n int) ([]*node, broker.HistoryReader) {
	t.Helper()
	nodes := start(t, f, n)
	hr, ok := nodes[0].b.(broker.HistoryReader)
	if !ok {
		t.Skip("the broker keeps no history (it is not a broker.HistoryReader)")
	}
	return nodes, hr
}

func testHistory(t *testing.T, f Factory) {
	nodes, _ := historyOf(t, f, 2)
	a, b := nodes[0], nodes[1]
	hrB := b.b.(broker.HistoryReader)
	topic := Unique("hist/")
	subscribe(t, b, topic)
	policy := &broker.HistoryPolicy{Size: 10, TTL: time.Minute}
	var positions []broker.Position
	for i := range 5 {
		pos, err := a.b.Publish(ctxT(t), topic, fmt.Appendf(nil, "h%d", i), broker.PublishOptions{History: policy})
		if err != nil {
			t.Fatalf("Publish with history: %v", err)
		}
		positions = append(positions, pos)
	}
	epoch := positions[0].Epoch
	if epoch == "" {
		t.Fatalf("first position %+v has no epoch", positions[0])
	}
	for i, pos := range positions {
		if pos.Epoch != epoch || pos.Offset != positions[0].Offset+uint64(i) {
			t.Fatalf("positions %+v: want one epoch and offsets increasing by 1", positions)
		}
	}
	// Heard with their positions.
	evs := b.rec.WaitFor(5, OnTopic(topic))
	for i, ev := range evs {
		if ev.Pos != positions[i] || ev.Payload != fmt.Sprintf("h%d", i) {
			t.Errorf("b heard %q at %+v, want h%d at %+v", ev.Payload, ev.Pos, i, positions[i])
		}
	}
	// The whole history, from any node.
	recs, latest, err := hrB.History(ctxT(t), topic, broker.Position{}, 100)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if latest != positions[4] {
		t.Errorf("latest %+v, want %+v", latest, positions[4])
	}
	checkRecords(t, recs, positions, 0, 5)
	// After a position; with a limit.
	recs, _, err = hrB.History(ctxT(t), topic, positions[1], 2)
	if err != nil {
		t.Fatalf("History after %+v: %v", positions[1], err)
	}
	checkRecords(t, recs, positions, 2, 4)
	// After the latest: nothing, and the latest position.
	recs, latest, err = hrB.History(ctxT(t), topic, positions[4], 100)
	if err != nil || len(recs) != 0 || latest != positions[4] {
		t.Errorf("History after the latest: %v, %+v, %v; want nothing, %+v, nil", recs, latest, err, positions[4])
	}
	// Another epoch.
	_, _, err = hrB.History(ctxT(t), topic, broker.Position{Epoch: epoch + "x", Offset: 1}, 100)
	if !errors.Is(err, broker.ErrEpochChanged) {
		t.Errorf("History from another epoch: %v, want ErrEpochChanged", err)
	}
	// A topic without history: nothing, no error, from zero.
	recs, latest, err = hrB.History(ctxT(t), Unique("none/"), broker.Position{}, 10)
	if err != nil || len(recs) != 0 || !latest.IsZero() {
		t.Errorf("History of a topic without history: %v, %+v, %v; want nothing", recs, latest, err)
	}
	// Publications without history do not enter it.
	publish(t, a, topic, "not kept")
	_, latest, err = hrB.History(ctxT(t), topic, broker.Position{}, 100)
	if err != nil || latest != positions[4] {
		t.Errorf("after a publication without history, latest %+v (%v), want %+v", latest, err, positions[4])
	}
}

func checkRecords(t *testing.T, recs []broker.Record, positions []broker.Position, from, to int) {
	t.Helper()
	if len(recs) != to-from {
		t.Fatalf("History returned %d records, want %d (h%d to h%d)", len(recs), to-from, from, to-1)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("h%d", from+i); string(r.Payload) != want || r.Pos != positions[from+i] {
			t.Errorf("record %d: %q at %+v, want %q at %+v", i, r.Payload, r.Pos, want, positions[from+i])
		}
	}
}

func testHistoryTrimmed(t *testing.T, f Factory) {
	nodes, hr := historyOf(t, f, 1)
	a := nodes[0]
	topic := Unique("trim/")
	policy := &broker.HistoryPolicy{Size: 3}
	var positions []broker.Position
	for i := range 6 {
		pos, err := a.b.Publish(ctxT(t), topic, fmt.Appendf(nil, "h%d", i), broker.PublishOptions{History: policy})
		if err != nil {
			t.Fatalf("Publish with history: %v", err)
		}
		positions = append(positions, pos)
	}
	recs, _, err := hr.History(ctxT(t), topic, broker.Position{}, 100)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	checkRecords(t, recs, positions, 3, 6)
	// After h2, the oldest kept is h3: nothing is missing.
	recs, _, err = hr.History(ctxT(t), topic, positions[2], 100)
	if err != nil {
		t.Fatalf("History after the last trimmed: %v", err)
	}
	checkRecords(t, recs, positions, 3, 6)
	// After h1, h2 is gone.
	if _, _, err = hr.History(ctxT(t), topic, positions[1], 100); !errors.Is(err, broker.ErrTrimmed) {
		t.Errorf("History after a trimmed position: %v, want ErrTrimmed", err)
	}
}

func testHistoryUnsupported(t *testing.T, f Factory) {
	nodes := start(t, f, 1)
	if _, ok := nodes[0].b.(broker.HistoryReader); ok {
		t.Skip("the broker keeps history")
	}
	_, err := nodes[0].b.Publish(ctxT(t), Unique("h/"), []byte("x"), broker.PublishOptions{History: &broker.HistoryPolicy{Size: 10}})
	if !errors.Is(err, broker.ErrHistoryUnsupported) {
		t.Errorf("Publish with history: %v, want ErrHistoryUnsupported", err)
	}
}

func leasersOf(t *testing.T, f Factory) (broker.Leaser, broker.Leaser) {
	t.Helper()
	nodes := start(t, f, 2)
	la, ok := nodes[0].b.(broker.Leaser)
	if !ok {
		t.Skip("the broker holds no leases (it is not a broker.Leaser)")
	}
	return la, nodes[1].b.(broker.Leaser)
}

func acquire(t *testing.T, l broker.Leaser, set, holder string, max int, ttl time.Duration, want bool) {
	t.Helper()
	got, err := l.Acquire(ctxT(t), set, holder, max, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, max %d): %v", holder, max, err)
	}
	if got != want {
		t.Fatalf("Acquire(%q, max %d) = %v, want %v", holder, max, got, want)
	}
}

func testLeases(t *testing.T, f Factory) {
	la, lb := leasersOf(t, f)
	set := Unique("user-")
	acquire(t, la, set, "s1", 2, time.Minute, true)
	acquire(t, lb, set, "s2", 2, time.Minute, true) // another node, the same set
	acquire(t, la, set, "s3", 2, time.Minute, false)
	acquire(t, lb, set, "s1", 2, time.Minute, true) // a holder's own lease again
	acquire(t, la, Unique("other-"), "s3", 2, time.Minute, true)
	if err := lb.Release(ctxT(t), set, "s1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	acquire(t, la, set, "s3", 2, time.Minute, true)
	acquire(t, la, set, "s4", 2, time.Minute, false)
	if err := la.Release(ctxT(t), set, "nobody"); err != nil {
		t.Errorf("Release of a lease not held: %v", err)
	}
}

func testLeaseExpiry(t *testing.T, f Factory) {
	la, lb := leasersOf(t, f)
	set, renewed := Unique("exp-"), Unique("renew-")
	const ttl = 300 * time.Millisecond
	acquire(t, la, set, "dead", 1, ttl, true)
	acquire(t, la, renewed, "alive", 1, ttl, true)
	aliveBy := time.Now() // "alive" expires by aliveBy+ttl, unless renewed
	if err := la.Renew(ctxT(t), renewed, []string{"alive"}, time.Minute); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	acquire(t, lb, set, "new", 1, time.Minute, false)
	// The lease not renewed expires: another holder gets in.
	deadline := time.Now().Add(wait)
	for {
		ok, err := lb.Acquire(ctxT(t), set, "new", 1, time.Minute)
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a lease of %v had not expired after %v", ttl, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The renewed one holds past its first ttl. "dead" expired before, but "alive" was taken
	// a moment later: wait until its first ttl has passed for sure, so that a Renew that does
	// nothing fails the case.
	time.Sleep(time.Until(aliveBy.Add(ttl + 50*time.Millisecond)))
	acquire(t, lb, renewed, "new", 1, time.Minute, false)
}

func killable(t *testing.T, f Factory) {
	t.Helper()
	if f.Kill == nil || f.Restart == nil {
		t.Skip("the Factory cannot kill and restart the engine")
	}
}

// waitErr waits until b.Err() is nil (up) or not (down).
func waitErr(t *testing.T, nd *node, up bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := nd.b.Err()
		if (err == nil) == up {
			if !up && !errors.Is(err, broker.ErrUnavailable) {
				t.Fatalf("Err while the engine is down: %v, want ErrUnavailable", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Err() = %v %v after the engine was killed or restarted", err, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testFailFast(t *testing.T, f Factory) {
	killable(t, f)
	nodes := start(t, f, 1)
	a := nodes[0]
	f.Kill(t)
	waitErr(t, a, false)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for i := range 100 {
		if _, err := a.b.Publish(ctx, "x", []byte("lost"), broker.PublishOptions{}); !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("Publish %d while the engine is down: %v, want ErrUnavailable", i, err)
		}
	}
	if err := a.b.Send(ctx, "", []byte("lost")); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Send while the engine is down: %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Errorf("failing took the whole %v", wait)
	}
	f.Restart(t)
	waitErr(t, a, true)
}

func testDiscontinuity(t *testing.T, f Factory) {
	killable(t, f)
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic := Unique("disc/")
	subscribe(t, a, topic)
	subscribe(t, b, topic)
	publish(t, a, topic, "before")
	b.rec.WaitFor(1, OnTopic(topic))
	f.Kill(t)
	waitErr(t, a, false)
	waitErr(t, b, false)
	f.Restart(t)
	waitErr(t, a, true)
	waitErr(t, b, true)
	// Once Err says the link is up, the subscriptions are back: a publication that succeeds
	// is heard, after the discontinuity. (Publish may still fail fast a few times, while the
	// broker finds out that a connection of its own died with the engine.)
	deadline := time.Now().Add(wait)
	for {
		_, err := a.b.Publish(ctxT(t), topic, []byte("after"), broker.PublishOptions{})
		if err == nil {
			break
		}
		if !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("Publish after the restart: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish still fails %v after the restart: %v", wait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectPayloads(t, "b after the restart", b.rec.WaitFor(2, OnTopic(topic)), []string{"before", "after"})
	for _, nd := range nodes {
		evs := nd.rec.WaitFor(1, isDiscontinuity)
		if evs[0].Err == nil {
			t.Errorf("%s heard a discontinuity without an error", nd.name)
		}
		if evs[0].Topics != nil && !slices.Contains(evs[0].Topics, topic) {
			t.Errorf("%s heard a discontinuity on %q, not on its topic %q", nd.name, evs[0].Topics, topic)
		}
	}
	// b heard of the discontinuity before the message published once its link was back: a
	// Handler that resets on a discontinuity must not reset what came after it.
	for _, ev := range b.rec.Events() {
		if isDiscontinuity(ev) {
			break
		}
		if ev.Kind == "message" && ev.Topic == topic && ev.Payload == "after" {
			t.Errorf("b heard %q, published once its link was back, before the discontinuity", ev.Payload)
		}
	}
	// Send works again too.
	if err := a.b.Send(ctxT(t), b.name, []byte("hi")); err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	b.rec.WaitFor(1, FromNode(a.name))
}

// testStartAgain checks that a Start that failed because the engine was down may be called
// again once it is back (herald retries Start on the same Broker).
func testStartAgain(t *testing.T, f Factory) {
	killable(t, f)
	f.Kill(t)
	b := f.New(t)
	t.Cleanup(func() { _ = b.Close() })
	rec := NewRecorder(t)
	name := Unique("again-")
	if err := b.Start(ctxT(t), name, rec); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Start with the engine down: %v, want ErrUnavailable", err)
	}
	f.Restart(t)
	if err := b.Start(ctxT(t), name, rec); err != nil {
		t.Fatalf("Start again, with the engine back: %v (a Start that failed may be called again: see broker.Broker.Start)", err)
	}
	nd := &node{name: name, b: b, rec: rec}
	topic := Unique("again/")
	subscribe(t, nd, topic)
	publish(t, nd, topic, "hello")
	expectPayloads(t, name, rec.WaitFor(1, OnTopic(topic)), []string{"hello"})
}

// testPayloads checks that payloads arrive byte for byte: empty, binary, and 256 KiB.
func testPayloads(t *testing.T, f Factory) {
	nodes := start(t, f, 2)
	a, b := nodes[0], nodes[1]
	topic := Unique("payloads/")
	subscribe(t, b, topic)
	large := make([]byte, 256<<10)
	for i := range large {
		large[i] = byte(i * 7)
	}
	want := []string{"", "\x00\xff\r\n binary \x80", string(large)}
	for _, p := range want {
		if _, err := a.b.Publish(ctxT(t), topic, []byte(p), broker.PublishOptions{}); err != nil {
			t.Fatalf("Publish of %d bytes: %v", len(p), err)
		}
		if err := a.b.Send(ctxT(t), b.name, []byte(p)); err != nil {
			t.Fatalf("Send of %d bytes: %v", len(p), err)
		}
	}
	for _, evs := range [][]Event{b.rec.WaitFor(3, OnTopic(topic)), b.rec.WaitFor(3, FromNode(a.name))} {
		for i, ev := range evs {
			if ev.Payload != want[i] {
				t.Errorf("%s %d: heard %d bytes, want %d (or they differ)", ev.Kind, i, len(ev.Payload), len(want[i]))
			}
		}
	}
}
