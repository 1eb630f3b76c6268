package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-go/herald/broker"
)

// cluster starts n Nodes on one MemoryHub, closed when the test ends, and waits until each
// knows all.
func cluster(t *testing.T, hub *broker.MemoryHub, n int, opts broker.NodeOptions) []*broker.Node {
	t.Helper()
	nodes := make([]*broker.Node, n)
	for i := range nodes {
		o := opts
		o.Name = fmt.Sprintf("n%d", i)
		nodes[i] = broker.NewNode(hub.Broker(), &o)
		if err := nodes[i].Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nodes[i].Close() })
	}
	for _, nd := range nodes {
		waitNodes(t, nd, n)
	}
	return nodes
}

func waitNodes(t *testing.T, nd *broker.Node, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(nd.Nodes()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s knows %v, want %d nodes", nd.Name(), nd.Nodes(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sink collects what a Join handler hears.
type sink struct {
	mu  sync.Mutex
	got []string
	pos []broker.Position
}

func (s *sink) fn(payload []byte, pos broker.Position) {
	s.mu.Lock()
	s.got = append(s.got, string(payload))
	s.pos = append(s.pos, pos)
	s.mu.Unlock()
}

func (s *sink) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := slices.Clone(s.got)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("heard %q, want %d messages", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestNodeJoin(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 2, broker.NodeOptions{Linger: -1})
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	var b1, b2, a1 sink
	leave1, err := b.Join(ctx, "t", b1.fn)
	if err != nil {
		t.Fatal(err)
	}
	leave2, err := b.Join(ctx, "t", b2.fn)
	if err != nil {
		t.Fatal(err)
	}
	leaveA, err := a.Join(ctx, "t", a1.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer leaveA()
	want := []string{"1", "2", "3"}
	for _, p := range want {
		if _, err := a.Publish(ctx, "t", []byte(p), broker.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range map[string]*sink{"b1": &b1, "b2": &b2, "a1": &a1} {
		if got := s.wait(t, 3); !slices.Equal(got, want) {
			t.Errorf("%s heard %q, want %q", name, got, want)
		}
	}
	if got := b.Topics(); !slices.Equal(got, []string{"t"}) {
		t.Errorf("Topics = %q", got)
	}
	// One handler left: the other still hears; leave is idempotent.
	leave1()
	leave1()
	if _, err := a.Publish(ctx, "t", []byte("4"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	b2.wait(t, 4)
	a1.wait(t, 4)
	if got := b1.wait(t, 3); len(got) != 3 {
		t.Errorf("b1 heard %q after it left", got)
	}
	// The last one left: the topic is gone from the node.
	leave2()
	deadline := time.Now().Add(5 * time.Second)
	for len(b.Topics()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Topics = %q after the last leave", b.Topics())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Joined again: subscribed again.
	var b3 sink
	leave3, err := b.Join(ctx, "t", b3.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer leave3()
	if _, err := a.Publish(ctx, "t", []byte("5"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := b3.wait(t, 1); !slices.Equal(got, []string{"5"}) {
		t.Errorf("b3 heard %q, want [5]", got)
	}
}

// TestNodeJoinLinger joins and leaves a topic many times at once: whatever the interleaving
// of subscribe and unsubscribe, a handler that Join returned for hears what is published.
func TestNodeJoinLinger(t *testing.T) {
	t.Parallel()
	for _, linger := range []time.Duration{-1, time.Millisecond} {
		t.Run(fmt.Sprint(linger), func(t *testing.T) {
			hub := broker.NewMemoryHub()
			nodes := cluster(t, hub, 1, broker.NodeOptions{Linger: linger})
			nd := nodes[0]
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 30 {
						var s sink
						leave, err := nd.Join(ctx, "t", s.fn)
						if err != nil {
							errs <- err
							return
						}
						p := fmt.Sprintf("%d-%d", g, i)
						if _, err := nd.Publish(ctx, "t", []byte(p), broker.PublishOptions{}); err != nil {
							errs <- err
							return
						}
						deadline := time.Now().Add(5 * time.Second)
						for !slices.Contains(s.wait(t, 1), p) {
							if time.Now().After(deadline) {
								errs <- fmt.Errorf("%s not heard by its own joiner", p)
								return
							}
							time.Sleep(time.Millisecond)
						}
						leave()
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestNodeRequest(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 2, broker.NodeOptions{RequestTimeout: 300 * time.Millisecond})
	a, b := nodes[0], nodes[1]
	for _, nd := range nodes {
		nd.Handle("echo", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
			return fmt.Appendf(nil, "%s from %s to %s", payload, from, nd.Name()), nil
		})
	}
	b.Handle("fail", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
		return nil, errors.New("no such session")
	})
	b.Handle("panic", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
		panic("boom")
	})
	b.Handle("slow", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
		<-ctx.Done() // it began after the request's own timer: it ends after it
		time.Sleep(50 * time.Millisecond)
		return nil, ctx.Err()
	})
	b.Handle("nested", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
		return b.Request(ctx, from, "echo", payload)
	})
	ctx := context.Background()
	cases := []struct {
		name, node, kind string
		want             string
		err              error
	}{
		{"remote", "n1", "echo", "hi from n0 to n1", nil},
		{"self", "n0", "echo", "hi from n0 to n0", nil},
		{"nested", "n1", "nested", "hi from n1 to n0", nil},
		{"unknown node", "n9", "echo", "", broker.ErrUnknownNode},
		{"timeout", "n1", "slow", "", broker.ErrTimeout},
		{"handler error", "n1", "fail", "", &broker.RemoteError{}},
		{"panic", "n1", "panic", "", &broker.RemoteError{}},
		{"no handler", "n1", "nothing", "", &broker.RemoteError{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := a.Request(ctx, c.node, c.kind, []byte("hi"))
			switch want := c.err.(type) {
			case nil:
				if err != nil || string(got) != c.want {
					t.Errorf("Request = %q, %v; want %q", got, err, c.want)
				}
			case *broker.RemoteError:
				var re *broker.RemoteError
				if !errors.As(err, &re) || re.Node != c.node || re.Kind != c.kind {
					t.Errorf("Request error %v, want a RemoteError from %s", err, c.node)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("Request error %v, want %v", err, want)
				}
			}
		})
	}
	// The caller's own context ends a request with its own error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Request(cctx, "n1", "slow", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Request with a cancelled context: %v", err)
	}
}

func TestNodeSurvey(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 3, broker.NodeOptions{RequestTimeout: 300 * time.Millisecond})
	for _, nd := range nodes {
		nd.Handle("count", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
			return []byte(nd.Name()), nil
		})
	}
	ctx := context.Background()
	replies, missing, err := nodes[0].Survey(ctx, "count", nil)
	if err != nil || len(missing) != 0 || len(replies) != 3 {
		t.Fatalf("Survey = %q, missing %q, %v", replies, missing, err)
	}
	for name, r := range replies {
		if string(r) != name {
			t.Errorf("%s answered %q", name, r)
		}
	}
	// A node cut off is missing (it is still in the registry: it has not expired yet).
	hub.Disconnect(nodes[2].Broker())
	replies, missing, err = nodes[0].Survey(ctx, "count", nil)
	if err != nil || !slices.Equal(missing, []string{"n2"}) || len(replies) != 2 {
		t.Errorf("Survey with n2 cut off = %q, missing %q, %v", replies, missing, err)
	}
	hub.Reconnect(nodes[2].Broker())
	// A node that fails is missing too.
	nodes[1].Handle("count", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
		return nil, errors.New("no")
	})
	replies, missing, err = nodes[0].Survey(ctx, "count", nil)
	if err != nil || !slices.Equal(missing, []string{"n1"}) || len(replies) != 2 {
		t.Errorf("Survey with n1 failing = %q, missing %q, %v", replies, missing, err)
	}
}

func TestNodeRegistry(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 3, broker.NodeOptions{HeartbeatInterval: 50 * time.Millisecond, NodeExpiry: 300 * time.Millisecond})
	a := nodes[0]
	// A node that closes says goodbye: it is gone at once, and a request to it fails fast.
	if err := nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, a, 2)
	if _, err := a.Request(context.Background(), "n1", "x", nil); !errors.Is(err, broker.ErrUnknownNode) {
		t.Errorf("Request to a closed node: %v", err)
	}
	// A node cut off stops heartbeating and expires; back, it is found again.
	hub.Disconnect(nodes[2].Broker())
	waitNodes(t, a, 1)
	if got := a.Nodes(); !slices.Equal(got, []string{"n0"}) {
		t.Errorf("Nodes = %q", got)
	}
	hub.Reconnect(nodes[2].Broker())
	waitNodes(t, a, 2)
	waitNodes(t, nodes[2], 2)
}

func TestNodeDiscontinuity(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 2, broker.NodeOptions{})
	b := nodes[1]
	heard := make(chan error, 4)
	b.OnDiscontinuity(func(topics []string, err error) { heard <- err })
	removed := make(chan error, 4)
	remove := b.OnDiscontinuity(func(topics []string, err error) { removed <- err })
	remove()
	remove()
	hub.Disconnect(b.Broker())
	if err := b.Err(); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Err while cut off: %v", err)
	}
	if _, err := b.Publish(context.Background(), "t", nil, broker.PublishOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish while cut off: %v", err)
	}
	hub.Reconnect(b.Broker())
	select {
	case err := <-heard:
		if err == nil {
			t.Error("discontinuity without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no discontinuity heard")
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err after Reconnect: %v", err)
	}
	if len(removed) != 0 {
		t.Error("a removed listener heard the discontinuity")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Err(); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Err after Close: %v", err)
	}
	if _, err := b.Join(context.Background(), "t", func([]byte, broker.Position) {}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Join after Close: %v", err)
	}
}

func TestNodeHistory(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 2, broker.NodeOptions{})
	var s sink
	leave, err := nodes[1].Join(context.Background(), "s", s.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	pos, err := nodes[0].Publish(context.Background(), "s", []byte("x"), broker.PublishOptions{History: &broker.HistoryPolicy{Size: 5}})
	if err != nil || pos.Offset != 1 {
		t.Fatalf("Publish = %+v, %v", pos, err)
	}
	s.wait(t, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pos[0] != pos {
		t.Errorf("heard at %+v, published at %+v", s.pos[0], pos)
	}
}

// TestNodeCloseInFlight closes nodes while requests are in flight both ways: Close cancels the
// handlers' contexts and returns, and the waiting requests end.
func TestNodeCloseInFlight(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 2, broker.NodeOptions{RequestTimeout: 5 * time.Second})
	a, b := nodes[0], nodes[1]
	entered := make(chan struct{}, 10)
	b.Handle("block", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := a.Request(context.Background(), "n1", "block", nil)
			errs <- err
		}()
	}
	for range 3 {
		<-entered
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Close waited for the handlers' RequestTimeout")
	}
	// b said goodbye: the requests to it end at once, before their timeout.
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a request to a node that closed succeeded")
			}
		case <-time.After(4 * time.Second):
			t.Fatal("a request to a node that closed waited for its timeout")
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Request(context.Background(), "n0", "block", nil); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Request after Close: %v", err)
	}
}

// A node with no handler for a survey's kind (another application on the same broker) is
// neither an answer nor missing; a node whose handler fails is missing.
func TestNodeSurveySkipsNodesWithoutHandler(t *testing.T) {
	hub := broker.NewMemoryHub()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var nodes []*broker.Node
	for _, name := range []string{"a", "b", "c"} {
		n := broker.NewNode(hub.Broker(), &broker.NodeOptions{Name: name})
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		nodes = append(nodes, n)
	}
	nodes[0].Handle("count", func(context.Context, string, []byte) ([]byte, error) { return []byte("1"), nil })
	nodes[1].Handle("count", func(context.Context, string, []byte) ([]byte, error) { return nil, errors.New("broken") })
	// c has no handler for "count".
	for deadline := time.Now().Add(5 * time.Second); len(nodes[0].Nodes()) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("registry: %v", nodes[0].Nodes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	replies, missing, err := nodes[0].Survey(ctx, "count", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 1 || string(replies["a"]) != "1" {
		t.Errorf("replies = %q, want only a's", replies)
	}
	if len(missing) != 1 || missing[0] != "b" {
		t.Errorf("missing = %v, want [b]", missing)
	}
}

// surveyResult is what a Survey run on its own goroutine returned.
type surveyResult struct {
	replies map[string][]byte
	missing []string
	err     error
}

// blockingCluster starts nodes n0, n1 and n2 with a long RequestTimeout; n2's handler of
// "count" blocks until the returned release is called (at the latest when the test ends), the
// others answer at once. It returns the nodes and a channel told when n2's handler is entered.
func blockingCluster(t *testing.T) ([]*broker.Node, <-chan struct{}, func()) {
	t.Helper()
	hub := broker.NewMemoryHub()
	nodes := cluster(t, hub, 3, broker.NodeOptions{RequestTimeout: time.Minute})
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release) // registered after cluster's: runs before the nodes close
	for _, nd := range nodes {
		nd.Handle("count", func(ctx context.Context, from string, payload []byte) ([]byte, error) {
			if nd.Name() == "n2" {
				entered <- struct{}{}
				<-unblock
			}
			return []byte(nd.Name()), nil
		})
	}
	return nodes, entered, release
}

// surveyBlocked runs nd.Survey(ctx, "count") on its own goroutine, and returns once n2's
// handler is entered (see blockingCluster). A Survey that ends before fails the test.
func surveyBlocked(t *testing.T, ctx context.Context, nd *broker.Node, entered <-chan struct{}) <-chan surveyResult {
	t.Helper()
	done := make(chan surveyResult, 1)
	go func() {
		replies, missing, err := nd.Survey(ctx, "count", nil)
		done <- surveyResult{replies, missing, err}
	}()
	select {
	case <-entered:
	case r := <-done:
		t.Fatalf("the Survey ended before n2's handler was entered: %q, missing %q, %v", r.replies, r.missing, r.err)
	}
	return done
}

// TestNodeSurveyNodeLeaves checks that a Survey does not wait for a node that said goodbye:
// the node is missing, and the Survey ends long before its RequestTimeout.
func TestNodeSurveyNodeLeaves(t *testing.T) {
	t.Parallel()
	nodes, entered, release := blockingCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := surveyBlocked(t, ctx, nodes[0], entered)
	closed := make(chan error, 1)
	go func() { closed <- nodes[2].Close() }() // says goodbye, then waits for its handler
	r := <-done
	release()
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the Survey waited for its context (10 s) although n2 left")
	}
	if r.err != nil || !slices.Equal(r.missing, []string{"n2"}) || len(r.replies) != 2 {
		t.Errorf("Survey = %q, missing %q, %v; want n0's and n1's answers, n2 missing", r.replies, r.missing, r.err)
	}
}

// TestNodeSurveyClose checks that closing the surveying node ends its Survey with ErrClosed
// and the answers it had, rather than after its RequestTimeout.
func TestNodeSurveyClose(t *testing.T) {
	t.Parallel()
	nodes, entered, release := blockingCluster(t)
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := surveyBlocked(t, ctx, nodes[0], entered)
	if err := nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if ctx.Err() != nil {
		t.Fatalf("the Survey waited for its context (10 s) although its node closed")
	}
	if !errors.Is(r.err, broker.ErrClosed) || string(r.replies["n0"]) != "n0" || !slices.Contains(r.missing, "n2") {
		t.Errorf("Survey = %q, missing %q, %v; want n0's answer, n2 missing, ErrClosed", r.replies, r.missing, r.err)
	}
}

// closingBroker closes its Node as soon as its own Start has succeeded: a Close that runs
// while Node.Start is between the broker's Start and its own goroutines.
type closingBroker struct {
	broker.Broker
	node *broker.Node
}

func (b *closingBroker) Start(ctx context.Context, name string, h broker.Handler) error {
	if err := b.Broker.Start(ctx, name, h); err != nil {
		return err
	}
	return b.node.Close()
}

// TestNodeCloseDuringStart checks that a Node closed while it starts reports ErrClosed from
// Start and starts no goroutine after Close returned (goleak in TestMain would see it).
func TestNodeCloseDuringStart(t *testing.T) {
	t.Parallel()
	cb := &closingBroker{Broker: broker.NewMemoryHub().Broker()}
	cb.node = broker.NewNode(cb, nil)
	if err := cb.node.Start(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Start of a node closed meanwhile: %v, want ErrClosed", err)
	}
	if err := cb.node.Err(); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Err: %v, want ErrClosed", err)
	}
}
