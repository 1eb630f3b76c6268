package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-go/herald/bench/internal/fanload"
	"github.com/herald-go/herald/bench/internal/wsraw"
	"github.com/herald-go/herald/fallback"
)

// Transports of -transport.
const (
	transportWS   = "ws"
	transportSSE  = "sse"
	transportPoll = "poll"
)

// fbConn is nes over herald's fallback transport: a fallback.Conn (an event
// stream or long-polls down, JSON POSTs up), spoken to with the same
// hand-written nes as the raw WebSocket client (conn). One goroutine reads it
// and writes to it.
type fbConn struct {
	c      *fallback.Conn
	js     []byte // the last message written; reused (Write copies it)
	nextID int64
}

// dialFallback opens a fallback session with the nes server at addr whose
// WebSocket is at path: its endpoints are at path followed by /nes. Over
// poll it long-polls, over sse it reads an event stream. hc makes every
// request of the session.
func dialFallback(addr, path, transport string, hc *http.Client, timeout time.Duration) (*fbConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	base := "http://" + addr + strings.TrimSuffix(path, "/") + "/nes"
	c, err := fallback.Dial(ctx, base, &fallback.DialOptions{
		Poll:        transport == transportPoll,
		HTTPClient:  hc,
		OpenTimeout: timeout,
	})
	if err != nil {
		return nil, err
	}
	if want := map[string]string{transportSSE: fallback.TransportSSE, transportPoll: fallback.TransportPoll}[transport]; c.Transport() != want {
		_ = c.Close()
		return nil, fmt.Errorf("fallback session over %q, not %q", c.Transport(), want)
	}
	return &fbConn{c: c, nextID: 1}, nil
}

func (f *fbConn) send(typ string, body func(b []byte) []byte) (int64, error) {
	id := f.nextID
	f.nextID++
	f.js = fanload.NesMessage(f.js[:0], typ, id, body)
	return id, f.c.Write(context.Background(), f.js)
}

func (f *fbConn) read() ([]byte, error) { return f.c.Read(context.Background()) }

// Close ends the session: the Conn tells the server in a last POST.
func (f *fbConn) Close() { _ = f.c.Close() }

// fallbackClient is the HTTP client of every fallback session of the run:
// no proxy, no compression, HTTP/1.1, and a keep-alive pool that holds an
// idle connection for each of sessions (so that a round of heartbeat
// answers, one POST per session at once, finds its connections again
// instead of opening new ones). Streams take a connection each for their
// lifetime; the server closes it when the stream ends. Every connection
// closes with SO_LINGER 0, as the raw client's do, so that runs leave no
// TIME_WAIT behind.
func fallbackClient(sessions int, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return c, err
		},
		MaxIdleConnsPerHost: sessions + dialers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// checkNoFile fails when the limit on open files is below need, naming the
// fix.
func checkNoFile(need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return nil
	}
	if l.Cur < uint64(need) {
		return fmt.Errorf("the limit on open files is %d, and this run needs about %d (a stream or poll and a POST "+
			"connection per session): raise it with `ulimit -n %d` (or the hard limit, in /etc/security/limits.conf)",
			l.Cur, need, need)
	}
	return nil
}

// sessionFiles is how many descriptors n fallback sessions may need: a stream
// or poll connection and a POST connection each, and spare.
func sessionFiles(n int) int { return 2*n + 256 }

// closeAll closes the sessions, a few at a time: each says goodbye in a POST.
func closeAll(cs []*fbConn) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(dialers, len(cs)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(cs)); i = next.Add(1) - 1 {
				cs[i].Close()
			}
		})
	}
	wg.Wait()
}

// runFallbackRequests is mode requests over sse or poll: the load of
// runRequests, over fallback sessions.
func runFallbackRequests(addr, path, transport string, conns, depth int, l wsraw.Load, timeout time.Duration) error {
	if err := checkNoFile(sessionFiles(conns)); err != nil {
		return err
	}
	hc := fallbackClient(conns, timeout)
	return requests(conns, depth, l, func() (*fbConn, error) { return dialFallback(addr, path, transport, hc, timeout) })
}

// runFallbackFanout is mode fanout over sse or poll: subs fallback sessions
// subscribe to topic, each read by a goroutine of its own (a fallback.Conn
// has its own goroutines anyway: the stream's or the polls' reader and the
// POSTs' sender), and a raw WebSocket connection publishes, as in
// runFanout, with the same output. A publish's time runs from just before
// its request is written until the last subscriber's reader has the
// publication.
func runFallbackFanout(addr, path, topic, transport string, subs, pubs, warmupPubs int, timeout time.Duration) error {
	if err := checkNoFile(sessionFiles(subs)); err != nil {
		return err
	}
	hc := fallbackClient(subs, timeout)
	cs, err := wsraw.DialAll(subs, dialers, func(int) (*fbConn, error) {
		c, err := dialFallback(addr, path, transport, hc, timeout)
		if err != nil {
			return nil, err
		}
		if err = hello(c); err == nil {
			err = subscribe(c, topic)
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
	pub, err := dial(addr, path, timeout)
	if err != nil {
		closeAll(cs)
		return err
	}
	defer pub.Close()
	if err := hello(pub); err != nil {
		closeAll(cs)
		return fmt.Errorf("publisher hello: %w", err)
	}

	var (
		seq     atomic.Int64 // the publication being delivered
		got     atomic.Int64 // subscribers that have read it
		lastAt  time.Time    // when the last one did; written before done is signalled
		done    = make(chan struct{}, 1)
		errc    = make(chan error, 1)
		stopped atomic.Bool
		wg      sync.WaitGroup
	)
	defer func() {
		stopped.Store(true)
		closeAll(cs) // ends the readers' reads
		wg.Wait()
	}()
	fail := func(err error) {
		if !stopped.Load() {
			select {
			case errc <- err:
			default:
			}
		}
	}
	wantPath := []byte(`"path":` + strconv.Quote(topic))
	for _, c := range cs {
		wg.Go(func() {
			var last int64
			for {
				m, err := c.read()
				if err != nil {
					fail(fmt.Errorf("subscriber: %w", err))
					return
				}
				switch string(fanload.Field(m, `"type":"`)) {
				case "pub":
					s, ok := fanload.Number(m, `"seq":`)
					if cur := seq.Load(); !ok || !bytes.Contains(m, wantPath) || s != cur || s <= last {
						fail(fmt.Errorf("subscriber: unexpected publication %.200s (current seq %d, last %d)", m, cur, last))
						return
					}
					last = s
					if got.Add(1) == int64(subs) {
						lastAt = time.Now()
						done <- struct{}{}
					}
				case "ping":
					if err := pong(c); err != nil {
						fail(err)
						return
					}
				default:
					fail(fmt.Errorf("subscriber: unexpected message %.200s", m))
					return
				}
			}
		})
	}
	fmt.Printf("open %d\n", subs)

	var (
		lat  []time.Duration
		t0   time.Time
		cpu0 float64
	)
	for i := 1; i <= warmupPubs+pubs; i++ {
		if i == warmupPubs+1 {
			t0, cpu0 = time.Now(), wsraw.CPUSeconds()
			fmt.Println("start")
		}
		got.Store(0)
		seq.Store(int64(i))
		sent := time.Now()
		deadline := sent.Add(timeout)
		id, err := pub.send("request", fanload.PublishBody(topic, int64(i)))
		if err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		if err := awaitPublished(pub, id, deadline); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-done:
			t.Stop()
		case err := <-errc:
			t.Stop()
			return err
		case <-t.C:
			return fmt.Errorf("publish %d: %d of %d subscribers had it after %v", i, got.Load(), subs, timeout)
		}
		if i > warmupPubs {
			lat = append(lat, lastAt.Sub(sent))
		}
	}
	t1, cpu1 := time.Now(), wsraw.CPUSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	printLatencies(lat)
	return nil
}

// awaitPublished reads the publisher's connection until the reply to the
// publish request id arrives, by deadline, answering pings on the way; the
// reply must be {ok:true} with status 200.
func awaitPublished(c *conn, id int64, deadline time.Time) error {
	_ = c.NetConn().SetReadDeadline(deadline)
	defer c.NetConn().SetReadDeadline(time.Time{})
	for {
		m, err := c.read()
		if err != nil {
			if isTimeout(err) {
				return errors.New("no reply from the server in time")
			}
			return err
		}
		switch string(fanload.Field(m, `"type":"`)) {
		case "ping":
			if err := pong(c); err != nil {
				return err
			}
		case "request":
			got, ok := fanload.Number(m, `"id":`)
			if !ok || got != id || !bytes.Contains(m, []byte(`"statusCode":200`)) || !bytes.Contains(m, []byte(`"ok":true`)) {
				return fmt.Errorf("publisher: unexpected reply %.200s (publish id %d)", m, id)
			}
			return nil
		default:
			return fmt.Errorf("publisher: unexpected message %.200s", m)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
