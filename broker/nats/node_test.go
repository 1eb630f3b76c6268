package nats_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/internal/testpeers"
)

// TestNode runs broker.Node over NATS: topics, requests, a survey, and a server restart heard
// through OnDiscontinuity, after which all of it works again.
func TestNode(t *testing.T) {
	srv := testpeers.StartNATS(t)
	ctx := context.Background()
	nodes := make([]*broker.Node, 3)
	for i := range nodes {
		nodes[i] = broker.NewNode(nats.New(srv.URL(), fast), &broker.NodeOptions{
			Name: fmt.Sprintf("n%d", i), HeartbeatInterval: 100 * time.Millisecond, NodeExpiry: time.Second,
		})
		nodes[i].Handle("name", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
			return []byte(nodes[i].Name() + " for " + from), nil
		})
		if err := nodes[i].Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nodes[i].Close() })
	}
	a, c := nodes[0], nodes[2]
	heard := make(chan string, 100)
	leave, err := c.Join(ctx, "p:/rooms/1", func(payload []byte, _ broker.Position) { heard <- string(payload) })
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	disc := make(chan error, 10)
	c.OnDiscontinuity(func(_ []string, err error) { disc <- err })

	check := func(when string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(a.Nodes()) != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: a knows %v", when, a.Nodes())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := a.Publish(ctx, "p:/rooms/1", []byte(when), broker.PublishOptions{}); err != nil {
			t.Fatalf("%s: Publish: %v", when, err)
		}
		select {
		case got := <-heard:
			if got != when {
				t.Errorf("%s: c heard %q", when, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: c heard nothing", when)
		}
		got, err := a.Request(ctx, "n2", "name", nil)
		if err != nil || string(got) != "n2 for n0" {
			t.Errorf("%s: Request = %q, %v", when, got, err)
		}
		replies, missing, err := a.Survey(ctx, "name", nil)
		if err != nil || len(missing) != 0 || len(replies) != 3 || string(replies["n1"]) != "n1 for n0" {
			t.Errorf("%s: Survey = %q, missing %q, %v", when, replies, missing, err)
		}
	}
	check("before")

	srv.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for !errors.Is(a.Err(), broker.ErrUnavailable) {
		if time.Now().After(deadline) {
			t.Fatalf("Err = %v with the server down", a.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Publish(ctx, "p:/rooms/1", []byte("lost"), broker.PublishOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish with the server down: %v", err)
	}
	srv.Restart()
	select {
	case err := <-disc:
		if err == nil {
			t.Error("discontinuity without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("c heard no discontinuity")
	}
	// The restart raced with publications: wait for the links, then all works again.
	for _, nd := range nodes {
		for nd.Err() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: Err = %v after the restart", nd.Name(), nd.Err())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	check("after")
	if len(heard) != 0 {
		t.Errorf("c heard more: %q", slices.Collect(func(yield func(string) bool) {
			for len(heard) > 0 && yield(<-heard) {
			}
		}))
	}
}
