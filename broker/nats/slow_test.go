package nats_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/internal/testpeers"
)

// blocker is a Handler whose HandleMessage waits until release is closed.
type blocker struct {
	release chan struct{}
	msgs    chan string
	disc    chan []string
}

func (b *blocker) HandleMessage(topic string, payload []byte, pos broker.Position) {
	<-b.release
	select {
	case b.msgs <- string(payload):
	default:
	}
}
func (b *blocker) HandleNode(string, []byte) {}
func (b *blocker) HandleDiscontinuity(topics []string, err error) {
	if err != nil {
		b.disc <- topics
	}
}

// TestSlowConsumer checks that a node whose handler falls behind never blocks the link: it
// loses what overflows Options.QueueSize and hears a discontinuity on the topic.
func TestSlowConsumer(t *testing.T) {
	srv := testpeers.StartNATS(t)
	ctx := context.Background()
	h := &blocker{release: make(chan struct{}), msgs: make(chan string, 1000), disc: make(chan []string, 10)}
	slow := nats.New(srv.URL(), &nats.Options{QueueSize: 8})
	if err := slow.Start(ctx, "slow", h); err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	pub := nats.New(srv.URL(), nil)
	if err := pub.Start(ctx, "pub", brokertest.NewRecorder(t)); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := slow.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if _, err := pub.Publish(ctx, "t", fmt.Append(nil, i), broker.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A round trip of the publisher's (Subscribe waits for one) shows the server routed them
	// all; one of the slow node's, answered behind them, shows its client has read them.
	if err := pub.Subscribe(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := slow.Subscribe(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	select {
	case topics := <-h.disc:
		if !slices.Equal(topics, []string{"t"}) {
			t.Errorf("discontinuity on %q, want [t]", topics)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no discontinuity after an overflow")
	}
	if err := slow.Err(); err != nil {
		t.Errorf("the link is down after an overflow: %v", err)
	}
}
