package fanload

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-go/herald/bench/internal/wsraw"
)

// Fanout configures [NesFanout].
type Fanout struct {
	// Nodes are the servers' host:port: subscriber i (from 1) goes to node (i-1) mod
	// len(Nodes), the publisher to the first.
	Nodes []string
	// Path is the WebSocket request path; Topic the subscription path published to.
	Path, Topic string
	// Subs is how many subscribers; Dialers how many of their handshakes run at once.
	Subs, Dialers int
	// Warmup publishes go first, unmeasured; then Pubs measured ones.
	Warmup, Pubs int
	// Timeout bounds a handshake, a reply and a publish's deliveries.
	Timeout time.Duration
	// TolerateWarmup lets a warm-up publish that does not reach every subscriber within
	// Timeout pass (counted in [FanoutResult.Missed]; a late delivery of it is then
	// ignored), as a broker's subscription may still be settling. Without it, it fails the
	// run, as a measured publish always does.
	TolerateWarmup bool
	// Deliveries keeps every measured delivery's latency ([FanoutResult.Deliveries]).
	Deliveries bool
}

// FanoutResult is what [NesFanout] measured.
type FanoutResult struct {
	// Last is each measured publish's time to its last subscriber.
	Last []time.Duration
	// Deliveries is every measured delivery's time, from just before the publish request
	// was written until the loop read the publication (kept with [Fanout.Deliveries]).
	Deliveries []time.Duration
	// Missed counts warm-up deliveries that never came (with [Fanout.TolerateWarmup]).
	Missed int
}

// nesRaw is a taken-over nes connection and what the fan-out loop keeps for it.
type nesRaw struct {
	*Conn
	nextID  int64
	lastSeq int64
}

// send writes one nes message and returns its id.
func (r *nesRaw) send(typ string, body func([]byte) []byte) (int64, error) {
	id := r.nextID
	r.nextID++
	r.out = AppendNes(r.out[:0], r.Mask, typ, id, body)
	return id, r.Write(r.out)
}

// NesFanout runs a nes fan-out: it opens f.Subs subscriber connections (hello, then a sub to
// f.Topic) and a publisher connection (hello), hands them all to one [Poller], prints
// "open N", then publishes f.Warmup and f.Pubs times one after another: a nes request POST
// /publish {path: topic, message: {seq, status}} and, once its reply and every subscriber's
// delivery of that seq have arrived, the next. Around the measured publishes it prints
//
//	start
//	stop pubs=N secs=S cpu=C
//
// where cpu is the process's user+system seconds in the window. Every message is checked,
// heartbeat pings are answered, and the connections are closed with SO_LINGER 0 on return.
func NesFanout(f Fanout) (FanoutResult, error) {
	var res FanoutResult
	var raws []*nesRaw
	defer func() {
		for _, r := range raws {
			r.Close()
		}
	}()
	sub := func(b []byte) []byte { return strconv.AppendQuote(append(b, `,"path":`...), f.Topic) }
	hello := func(b []byte) []byte { return append(b, `,"version":"2"`...) }
	cs, err := wsraw.DialAll(f.Subs, f.Dialers, func(i int) (*nesConn, error) {
		c, err := dialNes(f.Nodes[(i-1)%len(f.Nodes)], f.Path, f.Timeout)
		if err != nil {
			return nil, err
		}
		if err = c.call("hello", hello, f.Timeout); err == nil {
			err = c.call("sub", sub, f.Timeout)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return res, fmt.Errorf("opening subscribers: %w", err)
	}
	defer func() {
		for _, c := range cs { // those not yet handed over to the poller
			c.Close()
		}
	}()
	pc, err := dialNes(f.Nodes[0], f.Path, f.Timeout)
	if err != nil {
		return res, err
	}
	cs = append(cs, pc)
	if err := pc.call("hello", hello, f.Timeout); err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}

	p, err := NewPoller(256)
	if err != nil {
		return res, err
	}
	defer p.Close()
	for _, c := range cs {
		r, err := TakeOver(c.Conn, Options{Op: wsraw.OpText, Fragments: true, Max: MaxNes})
		if err != nil {
			return res, err
		}
		raws = append(raws, &nesRaw{Conn: r, nextID: c.nextID})
		if _, err := p.Add(r); err != nil {
			return res, err
		}
	}
	cs = nil
	publisher := len(raws) - 1
	pub := raws[publisher]
	fmt.Printf("open %d\n", f.Subs)

	wantPath := []byte(`"path":` + strconv.Quote(f.Topic))
	var (
		seq      int64 // the publication being delivered
		got      int   // subscribers that have read it
		sent     time.Time
		lastAt   time.Time
		pubID    int64 // the id of its publish request
		gotReply bool
		measured bool
	)
	if f.Deliveries {
		res.Deliveries = make([]time.Duration, 0, f.Subs*f.Pubs)
	}
	handle := func(i int, m []byte) error {
		r := raws[i]
		switch string(Field(m, `"type":"`)) {
		case "pub":
			s, ok := Number(m, `"seq":`)
			if i == publisher || !ok || !bytes.Contains(m, wantPath) || s <= r.lastSeq || s > seq {
				return fmt.Errorf("subscriber: unexpected publication %.200s (current seq %d, last %d)", m, seq, r.lastSeq)
			}
			r.lastSeq = s
			if s < seq { // a late warm-up delivery
				if measured || !f.TolerateWarmup {
					return fmt.Errorf("subscriber: publication %d arrived during publication %d", s, seq)
				}
				return nil
			}
			now := time.Now()
			if measured && f.Deliveries {
				res.Deliveries = append(res.Deliveries, now.Sub(sent))
			}
			if got++; got == f.Subs {
				lastAt = now
			}
		case "request":
			id, ok := Number(m, `"id":`)
			if i != publisher || !ok || id != pubID || gotReply ||
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
	done := func() bool { return got >= f.Subs && gotReply }
	var t0 time.Time
	var cpu0 float64
	for i := 1; i <= f.Warmup+f.Pubs; i++ {
		if i == f.Warmup+1 {
			measured = true
			t0, cpu0 = time.Now(), wsraw.CPUSeconds()
			fmt.Println("start")
		}
		seq, got, gotReply = int64(i), 0, false
		sent = time.Now()
		pubID, err = pub.send("request", PublishBody(f.Topic, seq))
		if err != nil {
			return res, fmt.Errorf("publish %d: %w", seq, err)
		}
		ok, err := p.Until(sent.Add(f.Timeout), done, handle)
		switch {
		case err != nil:
			return res, err
		case !ok && !measured && gotReply && f.TolerateWarmup:
			res.Missed += f.Subs - got
		case !ok:
			return res, fmt.Errorf("publish %d: %d of %d subscribers had it after %v (reply: %v)",
				seq, got, f.Subs, f.Timeout, gotReply)
		}
		if measured {
			res.Last = append(res.Last, lastAt.Sub(sent))
		}
	}
	t1, cpu1 := time.Now(), wsraw.CPUSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", f.Pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	return res, nil
}
