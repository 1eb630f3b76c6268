package nats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/internal/testpeers"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fast reconnects quickly, so that the kill and restart cases stay short.
var fast = &nats.Options{ReconnectWait: 50 * time.Millisecond}

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) brokertest.Factory {
		srv := testpeers.StartNATS(t)
		return brokertest.Factory{
			New:     func(t *testing.T) broker.Broker { return nats.New(srv.URL(), fast) },
			Kill:    func(t *testing.T) { srv.Shutdown() },
			Restart: func(t *testing.T) { srv.Restart() },
		}
	})
}

// TestStartDown checks that Start fails at once, with ErrUnavailable, when no server listens.
func TestStartDown(t *testing.T) {
	srv := testpeers.StartNATS(t)
	url := srv.URL()
	srv.Shutdown()
	b := nats.New(url, nil)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.Start(ctx, "n", brokertest.NewRecorder(t))
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Start with the server down: %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Start took %v to fail", 10*time.Second)
	}
}

// TestPrefix checks that two prefixes keep two applications apart on one server, and that a
// prefix that is no subject is refused.
func TestPrefix(t *testing.T) {
	srv := testpeers.StartNATS(t)
	ctx := context.Background()
	start := func(prefix, node string) (*nats.Broker, *brokertest.Recorder) {
		b := nats.New(srv.URL(), &nats.Options{Prefix: prefix})
		rec := brokertest.NewRecorder(t)
		if err := b.Start(ctx, node, rec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Subscribe(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		return b, rec
	}
	a, recA := start("app1", "n")
	_, recB := start("app2.x", "n")
	if _, err := a.Publish(ctx, "t", []byte("to app1"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, "", []byte("to all of app1")); err != nil {
		t.Fatal(err)
	}
	recA.WaitFor(1, brokertest.OnTopic("t"))
	recA.WaitFor(1, brokertest.FromNode("n"))
	time.Sleep(100 * time.Millisecond)
	if evs := recB.Events(); len(evs) != 0 {
		t.Errorf("app2 heard app1: %v", evs)
	}
	for _, prefix := range []string{"a b", "a.*", ".a", "a.", "a..b", ">"} {
		b := nats.New(srv.URL(), &nats.Options{Prefix: prefix})
		if err := b.Start(ctx, "n", brokertest.NewRecorder(t)); err == nil {
			t.Errorf("Prefix %q accepted", prefix)
		}
		_ = b.Close()
	}
}
