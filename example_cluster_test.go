package herald_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/client"
)

// Several nodes share a broker: a publication made on one node reaches the subscribers of
// every node, and Presence sees them all. Here two nodes share an in-process hub; in
// production each node is a process given a broker/redis or broker/nats Broker, behind a
// load balancer that needs no sticky sessions.
func ExampleOptions_broker() {
	hub := broker.NewMemoryHub()
	var nodes []*herald.Server
	var urls []string
	for _, name := range []string{"a", "b"} {
		srv := herald.NewServer(nil, &herald.Options{Broker: hub.Broker(), Node: name})
		srv.Subscription("/room/{id}", nil)
		hs := httptest.NewServer(srv)
		defer hs.Close()
		defer srv.Close()
		nodes = append(nodes, srv)
		urls = append(urls, hs.URL)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(urls[0], &client.Options{Dial: direct}) // connected to node a
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 1)
	if _, err := c.Subscribe(ctx, "/room/1", func(u client.Update) { got <- string(u.Message) }); err != nil {
		log.Fatal(err)
	}

	// Published on node b.
	if err := nodes[1].Publish("/room/1", map[string]string{"text": "hello from b"}, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	p, err := nodes[1].Presence(ctx, "/room/1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Sockets, p.Entries[0].Node, len(p.Missing))
	// Output:
	// {"text":"hello from b"}
	// 1 a 0
}
