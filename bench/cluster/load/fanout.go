package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// dialers is how many subscriber handshakes are in progress at once.
const dialers = 32

// runFanout is the client's one mode: see the package comment. The connections are opened
// with the net package, then read from one epoll loop on raw descriptors (as bench/nes's load
// client does): a Go reader per connection would cost the client more per delivery than the
// server's write, and its scheduling would land in the latencies.
func runFanout(nodes []string, path, topic string, subs, pubs, warmupPubs int, timeout time.Duration) error {
	var raws []*rawConn
	defer func() {
		for _, r := range raws {
			r.close()
		}
	}()
	sub := func(b []byte) []byte { return strconv.AppendQuote(append(b, `,"path":`...), topic) }
	hello := func(b []byte) []byte { return append(b, `,"version":"2"`...) }
	cs, err := wsraw.DialAll(subs, dialers, func(i int) (*conn, error) {
		c, err := dial(nodes[(i-1)%len(nodes)], path, timeout)
		if err != nil {
			return nil, err
		}
		if err = c.call("hello", hello, timeout); err == nil {
			err = c.call("sub", sub, timeout)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return fmt.Errorf("opening subscribers: %w", err)
	}
	defer func() {
		for _, c := range cs { // those not yet handed over to the epoll loop
			c.Close()
		}
	}()
	pub, err := dial(nodes[0], path, timeout)
	if err != nil {
		return err
	}
	cs = append(cs, pub)
	if err := pub.call("hello", hello, timeout); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}

	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer syscall.Close(ep)
	byFD := map[int32]*rawConn{}
	for i, c := range cs {
		r, err := c.raw()
		if err != nil {
			return err
		}
		r.publisher = i == len(cs)-1
		raws = append(raws, r)
		byFD[int32(r.fd)] = r
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, r.fd,
			&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(r.fd)}); err != nil {
			return err
		}
	}
	cs = nil
	pubRaw := raws[len(raws)-1]
	fmt.Printf("open %d\n", subs)

	wantPath := []byte(`"path":` + strconv.Quote(topic))
	var (
		seq      int64
		got      int
		sent     time.Time
		lastAt   time.Time
		pubID    int64
		gotReply bool
		measured bool
		evs      = make([]syscall.EpollEvent, 256)
		lat      = make([]int64, 0, subs*pubs) // ns, every measured delivery
		last     = make([]int64, 0, pubs)      // ns, each measured publish to its last subscriber
		missed   int                           // warm-up deliveries that never came
	)
	handle := func(r *rawConn, m []byte) error {
		switch string(field(m, `"type":"`)) {
		case "pub":
			s, ok := number(m, `"seq":`)
			if r.publisher || !ok || !bytes.Contains(m, wantPath) || s <= r.lastSeq || s > seq {
				return fmt.Errorf("subscriber: unexpected publication %.200s (current seq %d, last %d)", m, seq, r.lastSeq)
			}
			r.lastSeq = s
			if s < seq { // a late warm-up delivery
				if measured {
					return fmt.Errorf("subscriber: publication %d arrived during the measured publishes", s)
				}
				return nil
			}
			now := time.Now()
			if measured {
				lat = append(lat, int64(now.Sub(sent)))
			}
			if got++; got == subs {
				lastAt = now
			}
		case "request":
			id, ok := number(m, `"id":`)
			if !r.publisher || !ok || id != pubID || gotReply ||
				!bytes.Contains(m, []byte(`"statusCode":200`)) || !bytes.Contains(m, []byte(`"ok":true`)) {
				return fmt.Errorf("publisher: unexpected reply %.200s (publish id %d)", m, pubID)
			}
			gotReply = true
		case "ping":
			_, err := r.send("ping", nil)
			return err
		default:
			return fmt.Errorf("unexpected message %.200s", m)
		}
		return nil
	}
	var t0 time.Time
	var cpu0 float64
	for i := 1; i <= warmupPubs+pubs; i++ {
		if i == warmupPubs+1 {
			measured = true
			t0, cpu0 = time.Now(), wsraw.CPUSeconds()
			fmt.Println("start")
		}
		seq, got, gotReply = int64(i), 0, false
		sent = time.Now()
		pubID, err = pubRaw.send("request", func(b []byte) []byte {
			b = append(b, `,"method":"POST","path":"/publish","payload":{"path":`...)
			b = strconv.AppendQuote(b, topic)
			b = append(b, `,"message":{"seq":`...)
			b = strconv.AppendInt(b, seq, 10)
			return append(b, `,"status":"complete"}}`...)
		})
		if err != nil {
			return fmt.Errorf("publish %d: %w", seq, err)
		}
		deadline := sent.Add(timeout)
		for got < subs || !gotReply {
			wait := time.Until(deadline)
			if wait <= 0 {
				if !measured && gotReply {
					missed += subs - got
					break
				}
				return fmt.Errorf("publish %d: %d of %d subscribers had it after %v (reply: %v)", seq, got, subs, timeout, gotReply)
			}
			n, err := syscall.EpollWait(ep, evs, int(wait/time.Millisecond)+1)
			if err != nil {
				if errors.Is(err, syscall.EINTR) {
					continue
				}
				return err
			}
			for _, e := range evs[:n] {
				r := byFD[e.Fd]
				if err := r.readAll(func(m []byte) error { return handle(r, m) }); err != nil {
					return err
				}
			}
		}
		if measured {
			last = append(last, int64(lastAt.Sub(sent)))
		}
	}
	t1, cpu1 := time.Now(), wsraw.CPUSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	slices.Sort(lat)
	slices.Sort(last)
	fmt.Printf("lat n=%d p50=%d p99=%d max=%d last50=%d last99=%d missed=%d\n", len(lat),
		quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1), quantile(last, 0.5), quantile(last, 0.99), missed)
	return nil
}

// quantile returns the q quantile of sorted ns values (nearest rank), in µs.
func quantile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[int(q*float64(len(xs)-1)+0.5)] / 1e3
}
