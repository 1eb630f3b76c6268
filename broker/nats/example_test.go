package nats_test

import (
	"context"
	"log"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/nats"
)

// A node of a cluster whose nodes share a NATS server. herald's server does this itself when
// given the Broker in its Options; a Node is what it builds on.
func ExampleNew() {
	ctx := context.Background()
	node := broker.NewNode(nats.New("nats://127.0.0.1:4222", nil), nil)
	if err := node.Start(ctx); err != nil {
		log.Fatal(err) // the server is down: Start fails at once
	}
	defer node.Close()
	node.OnDiscontinuity(func(topics []string, err error) {
		log.Printf("messages may have been lost: %v", err)
	})
	leave, err := node.Join(ctx, "p:/news", func(payload []byte, _ broker.Position) {
		log.Printf("heard %s", payload)
	})
	if err != nil {
		log.Fatal(err)
	}
	defer leave()
	if _, err := node.Publish(ctx, "p:/news", []byte("hello"), broker.PublishOptions{}); err != nil {
		log.Print(err) // the link is down: wraps broker.ErrUnavailable, nothing was buffered
	}
}
