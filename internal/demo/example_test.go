package demo_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/herald-go/herald/internal/demo"
)

// A demo that cannot listen on -addr says what to do, and exits 1.
func ExampleListenError() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = net.Listen("tcp", addr) // the port is in use
	err = demo.ListenError(addr, err)
	fmt.Println(err.Error() == "-addr "+addr+": listen tcp "+addr+": bind: address already in use: "+
		"another program (another demo?) listens there; stop it, or pass another -addr (port 0 picks a free one)")
	// Output: true
}

// A node whose broker has not answered after the wait says so, with the command that starts
// one; a node that links up in time says nothing.
func ExampleWarnUnlinked() {
	name, start := demo.BrokerName("127.0.0.1:6380", "")
	never := func() bool { return false }
	demo.WarnUnlinked(context.Background(), os.Stdout, "chat", never, name, start, 10*time.Millisecond)

	linked := func() bool { return true }
	demo.WarnUnlinked(context.Background(), os.Stdout, "chat", linked, name, start, 10*time.Millisecond)
	// Output:
	// chat: no answer from the Redis server at 127.0.0.1:6380 after 10ms: is it running? (redis-server --port 6380 --save '' --appendonly no) Until it answers, /readyz says 503 and publications fail; the node links up by itself once it does. Leave -redis and -nats out for one node.
}

// The command a message suggests starts the broker on the port -redis or -nats asked for.
func ExampleBrokerName() {
	fmt.Println(demo.BrokerName("127.0.0.1:6380", ""))
	fmt.Println(demo.BrokerName("", "nats://127.0.0.1:4333"))
	fmt.Println(demo.BrokerName("", "nats://127.0.0.1"))
	// Output:
	// the Redis server at 127.0.0.1:6380 redis-server --port 6380 --save '' --appendonly no
	// the NATS server at nats://127.0.0.1:4333 nats-server -a 127.0.0.1 -p 4333
	// the NATS server at nats://127.0.0.1 nats-server -a 127.0.0.1 -p 4222
}
