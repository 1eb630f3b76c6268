package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dialers is how many subscriber handshakes are in progress at once.
const dialers = 32

// fanout is the state the subscribers share with the publishing loop.
type fanout struct {
	subs    int64
	seq     atomic.Int64 // the publication being delivered
	got     atomic.Int64 // subscribers that have read it
	lastAt  atomic.Int64 // when the last of them did, in Unix ns
	all     chan struct{}
	errc    chan error
	closing atomic.Bool
}

// runFanout is mode fanout: see the package comment.
func runFanout(addr, path, topic string, subs, pubs, warmupPubs int, timeout time.Duration) error {
	f := &fanout{subs: int64(subs), all: make(chan struct{}, 1), errc: make(chan error, subs+1)}
	var mu sync.Mutex
	var cs []*conn
	defer func() {
		f.closing.Store(true)
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			c.close()
		}
	}()

	// Open and subscribe the subscribers, a few handshakes at a time.
	next := make(chan struct{}, subs)
	for range subs {
		next <- struct{}{}
	}
	close(next)
	var wg sync.WaitGroup
	var dialErr error
	for range min(dialers, subs) {
		wg.Go(func() {
			for range next {
				c, err := dial(addr, path, timeout)
				if err == nil {
					mu.Lock()
					cs = append(cs, c)
					mu.Unlock()
					err = c.hello()
					if err == nil {
						err = c.subscribe(topic)
					}
				}
				if err != nil {
					mu.Lock()
					if dialErr == nil {
						dialErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if dialErr != nil {
		return fmt.Errorf("opening subscribers: %w", dialErr)
	}
	for _, c := range cs {
		go f.subscriber(c, topic)
	}

	pub, err := dial(addr, path, timeout)
	if err != nil {
		return err
	}
	mu.Lock()
	cs = append(cs, pub)
	mu.Unlock()
	if err := pub.hello(); err != nil {
		return fmt.Errorf("publisher hello: %w", err)
	}
	replies := make(chan int64, 1)
	var pubMu sync.Mutex // the publisher's writes: the loop below and its reader's pongs
	go f.publisherReader(pub, &pubMu, replies)
	fmt.Printf("open %d\n", subs)

	var lat []time.Duration
	var t0 time.Time
	var cpu0 float64
	for i := 1; i <= warmupPubs+pubs; i++ {
		if i == warmupPubs+1 {
			t0, cpu0 = time.Now(), cpuSeconds()
			fmt.Println("start")
		}
		seq := int64(i)
		f.got.Store(0)
		f.seq.Store(seq)
		body := func(b []byte) []byte {
			b = append(b, `,"method":"POST","path":"/publish","payload":{"path":`...)
			b = strconv.AppendQuote(b, topic)
			b = append(b, `,"message":{"seq":`...)
			b = strconv.AppendInt(b, seq, 10)
			return append(b, `,"status":"complete"}}`...)
		}
		pubMu.Lock()
		sent := time.Now()
		id, err := pub.send("request", body)
		pubMu.Unlock()
		if err != nil {
			return fmt.Errorf("publish %d: %w", seq, err)
		}
		deadline := time.NewTimer(timeout)
		for gotAll, gotReply := false, false; !gotAll || !gotReply; {
			select {
			case <-f.all:
				gotAll = true
			case r := <-replies:
				if r != id {
					deadline.Stop()
					return fmt.Errorf("publish %d: reply to id %d, want %d", seq, r, id)
				}
				gotReply = true
			case err := <-f.errc:
				deadline.Stop()
				return err
			case <-deadline.C:
				return fmt.Errorf("publish %d: %d of %d subscribers had it after %v (reply: %v)",
					seq, f.got.Load(), subs, timeout, gotReply)
			}
		}
		deadline.Stop()
		if i > warmupPubs {
			lat = append(lat, time.Unix(0, f.lastAt.Load()).Sub(sent))
		}
	}
	t1, cpu1 := time.Now(), cpuSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	var sb strings.Builder
	sb.WriteString("lat")
	for _, d := range lat {
		fmt.Fprintf(&sb, " %d", d.Microseconds())
	}
	fmt.Println(sb.String())
	return nil
}

// subscriber reads c until it closes, counting each publication of the
// current seq on topic; anything out of order is an error.
func (f *fanout) subscriber(c *conn, topic string) {
	wantPath := []byte(`"path":` + strconv.Quote(topic))
	var last int64
	fail := func(err error) {
		if !f.closing.Load() {
			f.errc <- err
		}
	}
	for {
		m, err := c.read()
		if err != nil {
			fail(err)
			return
		}
		switch string(field(m, `"type":"`)) {
		case "pub":
			seq, ok := number(m, `"seq":`)
			if !ok || !bytes.Contains(m, wantPath) || seq != f.seq.Load() || seq <= last {
				fail(fmt.Errorf("subscriber: unexpected publication %.200s (current seq %d, last %d)", m, f.seq.Load(), last))
				return
			}
			last = seq
			if f.got.Add(1) == f.subs {
				f.lastAt.Store(time.Now().UnixNano())
				f.all <- struct{}{}
			}
		case "ping":
			if err := c.pong(); err != nil {
				fail(err)
				return
			}
		default:
			fail(fmt.Errorf("subscriber: unexpected message %.200s", m))
			return
		}
	}
}

// publisherReader reads the publisher's connection: replies to its
// publishes go to replies, heartbeat pings are answered.
func (f *fanout) publisherReader(c *conn, mu *sync.Mutex, replies chan<- int64) {
	fail := func(err error) {
		if !f.closing.Load() {
			f.errc <- err
		}
	}
	for {
		m, err := c.read()
		if err != nil {
			fail(err)
			return
		}
		switch string(field(m, `"type":"`)) {
		case "request":
			id, ok := number(m, `"id":`)
			if !ok || !bytes.Contains(m, []byte(`"statusCode":200`)) || !bytes.Contains(m, []byte(`"ok":true`)) {
				fail(fmt.Errorf("publisher: unexpected reply %.200s", m))
				return
			}
			replies <- id
		case "ping":
			mu.Lock()
			err := c.pong()
			mu.Unlock()
			if err != nil {
				fail(err)
				return
			}
		default:
			fail(fmt.Errorf("publisher: unexpected message %.200s", m))
			return
		}
	}
}
