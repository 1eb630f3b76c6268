package redis_test

import (
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/brokertest"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/internal/testpeers"
)

// TestCommandsAfterRestartLoop kills and restarts Redis again and again, with and without
// the append-only file, and checks that once Err is nil again every command succeeds at
// once: Publish with and without history, History and Send (none may fail with EOF on a
// pipelined connection that broke while idle).
func TestCommandsAfterRestartLoop(t *testing.T) {
	for _, aof := range []bool{false, true} {
		name := "no-persistence"
		if aof {
			name = "aof"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := testpeers.StartRedis(t, &testpeers.RedisOptions{AOF: aof})
			b := newBroker(t, redis.Options{Addrs: []string{srv.Addr()}})
			node := brokertest.Unique("node-")
			startNode(t, b, node)
			history := broker.PublishOptions{History: &broker.HistoryPolicy{Size: 3}}
			for round := range 8 {
				if _, err := b.Publish(ctx10(t), "x", []byte("x"), history); err != nil {
					t.Fatalf("round %d: before the restart: %v", round, err)
				}
				srv.Kill()
				// Err can only say what the broker noticed: wait for the loss to be seen (a
				// command sent before that goes into the dead connection and fails, rightly).
				deadline := time.Now().Add(10 * time.Second)
				for b.Err() == nil {
					if time.Now().After(deadline) {
						t.Fatal("loss not noticed 10 s after Redis was killed")
					}
					time.Sleep(time.Millisecond)
				}
				srv.Restart()
				deadline = time.Now().Add(10 * time.Second)
				for b.Err() != nil {
					if time.Now().After(deadline) {
						t.Fatalf("link down 10 s after the restart: %v", b.Err())
					}
					time.Sleep(time.Millisecond)
				}
				if _, err := b.Publish(ctx10(t), "x", []byte("x"), broker.PublishOptions{}); err != nil {
					t.Fatalf("round %d: publication after the link came back: %v", round, err)
				}
				if _, err := b.Publish(ctx10(t), "x", []byte("x"), history); err != nil {
					t.Fatalf("round %d: publication with history after the link came back: %v", round, err)
				}
				if _, _, err := b.History(ctx10(t), "x", broker.Position{}, 0); err != nil {
					t.Fatalf("round %d: history after the link came back: %v", round, err)
				}
				if err := b.Send(ctx10(t), node, []byte("x")); err != nil {
					t.Fatalf("round %d: send after the link came back: %v", round, err)
				}
			}
		})
	}
}
