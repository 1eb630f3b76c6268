package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T) brokertest.Factory {
		hub := broker.NewMemoryHub()
		return brokertest.Factory{
			New:     func(t *testing.T) broker.Broker { return hub.Broker() },
			Kill:    func(t *testing.T) { hub.Kill() },
			Restart: func(t *testing.T) { hub.Restart() },
		}
	})
}

// blocker is a Handler whose HandleMessage waits until release is closed.
type blocker struct {
	entered chan struct{} // a message is being handled
	release chan struct{}
	msgs    chan string
	disc    chan []string
}

func (b *blocker) HandleMessage(topic string, payload []byte, pos broker.Position) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
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

// TestMemoryOverflow checks that a node whose handler falls behind never blocks the
// publisher: it loses what overflows its queue and hears a discontinuity.
func TestMemoryOverflow(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	slow, fast := hub.Broker(), hub.Broker()
	h := &blocker{entered: make(chan struct{}, 1), release: make(chan struct{}), msgs: make(chan string, 10000), disc: make(chan []string, 1)}
	ctx := context.Background()
	if err := slow.Start(ctx, "slow", h); err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := fast.Start(ctx, "fast", brokertest.NewRecorder(t)); err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	if err := slow.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// The first message blocks the handler; the others queue behind it.
	if _, err := fast.Publish(ctx, "t", []byte("first"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	<-h.entered
	const n = 6000
	for i := range n {
		if _, err := fast.Publish(ctx, "t", fmt.Append(nil, i), broker.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	close(h.release)
	select {
	case <-h.disc:
	case <-time.After(5 * time.Second):
		t.Fatal("no discontinuity after an overflow")
	}
	if got := len(h.msgs); got > 4096+1 || got == 0 { // the queue, and the one message being handled
		t.Errorf("the slow node heard %d of %d messages", got, n)
	}
}
