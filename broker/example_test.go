package broker_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/herald-go/herald/broker"
)

// Two nodes of one process share a MemoryHub: what one publishes, the other hears, and each
// answers the other's requests.
func ExampleNode() {
	ctx := context.Background()
	hub := broker.NewMemoryHub()
	a := broker.NewNode(hub.Broker(), &broker.NodeOptions{Name: "a"})
	b := broker.NewNode(hub.Broker(), &broker.NodeOptions{Name: "b"})
	for _, n := range []*broker.Node{a, b} {
		n.Handle("sockets", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
			return []byte(n.Name() + " has 2 sockets"), nil
		})
		if err := n.Start(ctx); err != nil {
			fmt.Println(err)
			return
		}
		defer n.Close()
	}

	heard := make(chan string, 1)
	leave, err := b.Join(ctx, "p:/rooms/1", func(payload []byte, pos broker.Position) {
		heard <- string(payload) // hand the work on: never block here
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer leave()
	if _, err := a.Publish(ctx, "p:/rooms/1", []byte("hello"), broker.PublishOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("b heard:", <-heard)

	// a learns of b by its heartbeats; a new node asks for them as it starts.
	for len(a.Nodes()) < 2 {
		time.Sleep(time.Millisecond)
	}
	reply, err := a.Request(ctx, "b", "sockets", nil)
	fmt.Println("b answered:", string(reply), err)

	replies, missing, err := a.Survey(ctx, "sockets", nil)
	var all []string
	for node, r := range replies {
		all = append(all, node+": "+string(r))
	}
	sort.Strings(all)
	fmt.Println(strings.Join(all, "; "), "| missing:", missing, err)
	// Output:
	// b heard: hello
	// b answered: b has 2 sockets <nil>
	// a: a has 2 sockets; b: b has 2 sockets | missing: [] <nil>
}

// A MemoryHub keeps history: a node that lost messages reads them back from its position.
func ExampleMemoryHub() {
	ctx := context.Background()
	hub := broker.NewMemoryHub()
	n := broker.NewNode(hub.Broker(), nil)
	if err := n.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer n.Close()
	keep := broker.PublishOptions{History: &broker.HistoryPolicy{Size: 100, TTL: time.Hour}}
	var last broker.Position
	for _, msg := range []string{"one", "two", "three"} {
		pos, err := n.Publish(ctx, "s:news", []byte(msg), keep)
		if err != nil {
			fmt.Println(err)
			return
		}
		if msg == "one" {
			last = pos
		}
	}
	records, latest, err := n.Broker().(broker.HistoryReader).History(ctx, "s:news", last, 10)
	for _, r := range records {
		fmt.Println(r.Pos.Offset, string(r.Payload))
	}
	fmt.Println("latest offset:", latest.Offset, err)
	// Output:
	// 2 two
	// 3 three
	// latest offset: 3 <nil>
}
