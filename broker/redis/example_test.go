package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/redis"
)

// printer is a broker.Handler that prints what it hears.
type printer struct{}

func (printer) HandleMessage(topic string, payload []byte, pos broker.Position) {
	fmt.Printf("%s: %s (offset %d)\n", topic, payload, pos.Offset)
}

func (printer) HandleNode(from string, payload []byte) {
	fmt.Printf("from %s: %s\n", from, payload)
}

func (printer) HandleDiscontinuity(topics []string, err error) {
	fmt.Printf("may have missed messages on %q: %v\n", topics, err)
}

// A node linked to a Redis server: it hears its own publications, keeps a history of the
// topic, and reads it back as any node could after a reconnection.
func Example() {
	b, err := redis.New(redis.Options{
		Addrs:   []string{"127.0.0.1:6379"},
		Timeout: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Start(ctx, "node-1", printer{}); err != nil {
		log.Fatal(err) // wraps broker.ErrUnavailable when Redis is not there
	}
	defer b.Close()

	if err := b.Subscribe(ctx, "news"); err != nil {
		log.Fatal(err)
	}
	keep := &broker.HistoryPolicy{Size: 100, TTL: 10 * time.Minute}
	first, err := b.Publish(ctx, "news", []byte("hello"), broker.PublishOptions{History: keep})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := b.Publish(ctx, "news", []byte("world"), broker.PublishOptions{History: keep}); err != nil {
		log.Fatal(err)
	}

	// What came after the first message, as a client that saw only it would ask.
	records, latest, err := b.History(ctx, "news", first, 0)
	switch {
	case errors.Is(err, broker.ErrEpochChanged), errors.Is(err, broker.ErrTrimmed):
		fmt.Println("cannot resume: start over")
	case err != nil:
		log.Fatal(err)
	}
	for _, r := range records {
		fmt.Printf("missed %s at offset %d of %d\n", r.Payload, r.Pos.Offset, latest.Offset)
	}
}
