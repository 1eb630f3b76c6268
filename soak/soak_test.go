//go:build unix

package soak

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	long = flag.Bool("soak.long", false, "run the long soak (make soak): thousands of connections per transport, for minutes")
	only = flag.String("soak.phases", "", "run only the phases whose numbers are listed (\"35\": phases 3 and 5)")
)

// config sizes a run. Counts "per kind" are for each of raw-ws, ws, sse and poll.
type config struct {
	name         string
	perKind      int           // connect and reconnect-storm phases: subscribers per kind
	msgs         int           // publications in the connect and storm phases
	watchers     int           // per kind: the subscribers that must miss nothing while the others misbehave
	churnWorkers int           // goroutines opening and closing connections
	churnFor     time.Duration // how long they do
	slow, vanish int           // per kind
	slowMsgs     int           // 1 KiB publications while consumers are slow
	hostile      int           // attacking goroutines
	hostileFor   time.Duration
	stormClients int // per kind, in the publish and subscribe storm
	stormPaths   int
	stormMsgs    int // per path
	subOps       int // subscribe/unsubscribe operations per storm client
	timeout      time.Duration
}

var (
	shortRun = config{name: "short", perKind: 100, msgs: 40, watchers: 10, churnWorkers: 12, churnFor: 4 * time.Second,
		slow: 4, vanish: 4, slowMsgs: 600, hostile: 6, hostileFor: 4 * time.Second,
		stormClients: 8, stormPaths: 8, stormMsgs: 60, subOps: 60, timeout: 4 * time.Minute}
	longRun = config{name: "long", perKind: 1000, msgs: 200, watchers: 100, churnWorkers: 64, churnFor: 60 * time.Second,
		slow: 50, vanish: 50, slowMsgs: 2000, hostile: 32, hostileFor: 60 * time.Second,
		stormClients: 100, stormPaths: 16, stormMsgs: 300, subOps: 300, timeout: 40 * time.Minute}
)

// env is what every phase shares.
type env struct {
	t    *testing.T
	cfg  config
	srv  *soakServer
	base usage
	ctx  context.Context
}

// TestSoak runs the phases one after another against one server; each starts from the
// baseline and must return to it. The table is printed at the end (go test -v shows it; a
// failing run shows it always).
func TestSoak(t *testing.T) {
	cfg := shortRun
	if *long {
		cfg = longRun
	}
	limit, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newSoakServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()

	e := &env{t: t, cfg: cfg, srv: srv, ctx: ctx}
	// The baseline: the server up, and one client of each kind connected and gone, so that
	// pools and the runtime's own structures that live for the process are counted in it.
	e.warmUp()
	var over []string
	e.base, over = settle(measure(), 0)
	if len(over) > 0 {
		t.Logf("baseline still moving: %v", over)
	}
	fmt.Printf("soak %s: server %s, RLIMIT_NOFILE %d, %d CPUs, load average %s\n", cfg.name, srv.addr, limit, numCPU(), loadavg())

	phases := []struct {
		name string
		run  func(*env, *row)
	}{
		{"1 connect+fan-out", phaseConnect},
		{"2 churn", phaseChurn},
		{"3 slow+vanishing", phaseSlow},
		{"4 hostile", phaseHostile},
		{"5 reconnect storm", phaseReconnectStorm},
		{"6 pub/sub storm", phasePubSubStorm},
	}
	var rows []*row
	peakG := 0
	for _, p := range phases {
		if ctx.Err() != nil {
			break
		}
		if *only != "" && !strings.Contains(*only, p.name[:1]) {
			continue
		}
		r := &row{phase: p.name}
		t.Logf("%s: starting; load average %s; kernel %s", p.name, loadavg(), sockstat())
		srv.forgetClosed()
		s := startSampler()
		start := time.Now()
		p.run(e, r)
		r.dur = time.Since(start)
		r.peak = s.finish()
		var over []string
		// The runtime keeps the descriptor of every goroutine it has made, for the process's
		// life: the allowance follows the most goroutines any phase so far has had.
		peakG = max(peakG, r.peak.goroutines)
		r.final, over = settle(e.base, peakG)
		for _, o := range over {
			r.fail("not back to the baseline after %s: %s", settleGrace, o)
		}
		if len(over) > 0 {
			t.Logf("%s: goroutines after the phase:\n%s", p.name, goroutineDump(12000))
		}
		if n := srv.sockets(); n != 0 {
			r.fail("%d nes sockets still open on the server", n)
		}
		r.peak.goroutines = max(r.peak.goroutines, r.final.goroutines)
		if logs := srv.log.take(); logs != "" {
			t.Logf("%s: the server logged %s", p.name, logs)
		}
		rows = append(rows, r)
		t.Logf("%s: %d conns, %d msgs, lost %d, dup %d, dropped %s, %.1fs, failures %v", r.phase, r.conns, r.msgs, r.lost, r.dup, r.dropped, r.dur.Seconds(), r.failures)
	}
	if ctx.Err() != nil {
		t.Errorf("the run passed its bound of %s", cfg.timeout)
	}
	var b strings.Builder
	printTable(&b, e.base, rows)
	fmt.Print(b.String())
	if out := os.Getenv("SOAK_TABLE"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
	for _, r := range rows {
		for _, f := range r.failures {
			t.Errorf("%s: %s", r.phase, f)
		}
	}
}

// warmUp connects and closes one subscriber of each kind.
func (e *env) warmUp() {
	for _, k := range allKinds {
		s, err := connect(e.ctx, e.srv.addr, k, []string{"/soak/warmup"}, false)
		if err != nil {
			e.t.Fatalf("warm-up %s: %v", k, err)
		}
		s.close()
	}
}

// connectMany connects perKind subscribers of each kind to paths, some at a time.
func (e *env) connectMany(addr string, kinds []string, perKind int, paths []string, reconnect bool) ([]subscriber, error) {
	var (
		mu   sync.Mutex
		subs []subscriber
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 48)
	)
	for i := 0; i < perKind; i++ {
		for _, k := range kinds {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
				defer cancel()
				s, err := connect(ctx, addr, k, paths, reconnect)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", k, err))
					return
				}
				subs = append(subs, s)
			}()
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		return subs, fmt.Errorf("%d of %d connections failed, the first: %v", len(errs), perKind*len(kinds), errs[0])
	}
	return subs, nil
}

func closeAll(subs []subscriber) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	for _, s := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.close()
		}()
	}
	wg.Wait()
}

// publish publishes seqs [from, to) on path, pad bytes each, and every window publications
// waits (up to a bound) for subs to have them: a publisher that outran its subscribers
// would make them slow consumers.
func (e *env) publish(path string, from, to, pad, window int, subs []subscriber) {
	for seq := from; seq < to; seq++ {
		if err := e.srv.Nes().Publish(path, publication(seq, pad), nil); err != nil {
			e.t.Logf("publish %s %d: %v", path, seq, err)
		}
		if window > 0 && ((seq+1-from)%window == 0 || seq == to-1) {
			waitDelivered(e.ctx, subs, map[string]int{path: seq + 1}, 20*time.Second)
		}
	}
}

// waitDelivered waits until every subscriber has had sent, or for d.
func waitDelivered(ctx context.Context, subs []subscriber, sent map[string]int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for _, s := range subs {
		for path, n := range sent {
			for !s.tracker().has(path, n) {
				if time.Now().After(deadline) || ctx.Err() != nil {
					return false
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	return true
}

// behind describes the subscribers that have not had sent: how many of each kind, and how
// far the first of each got.
func behind(subs []subscriber, sent map[string]int) string {
	count := map[string]int{}
	first := map[string]string{}
	for _, s := range subs {
		for path, n := range sent {
			if !s.tracker().has(path, n) {
				k := s.kind()
				count[k]++
				if first[k] == "" {
					s.tracker().mu.Lock()
					first[k] = fmt.Sprintf("%s at %d of %d", path, s.tracker().next[path], n)
					s.tracker().mu.Unlock()
					if why := s.dropReason(); why != "" {
						first[k] += ", connection lost: " + why
					}
				}
				break
			}
		}
	}
	var b strings.Builder
	for _, k := range allKinds {
		if count[k] > 0 {
			fmt.Fprintf(&b, "%d %s (e.g. %s) ", count[k], k, first[k])
		}
	}
	return strings.TrimSpace(b.String())
}

// tallyInto adds the subscribers' counts to the row.
func tallyInto(r *row, subs []subscriber, sent map[string]int) {
	for _, s := range subs {
		got, lost, dup := s.tracker().tally(sent)
		r.delivered += got
		r.lost += lost
		r.dup += dup
	}
}

// waitUntil polls cond every 20 ms for d.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// watch starts the watchers of a phase: subscribers of every kind that must miss nothing.
func (e *env) watch(r *row, path string) []subscriber {
	w, err := e.connectMany(e.srv.addr, allKinds, e.cfg.watchers, []string{path}, false)
	r.conns += len(w)
	if err != nil {
		r.fail("watchers: %v", err)
	}
	return w
}

// streamTo publishes on path every tick until stop is closed, waiting for the watchers every
// few publications; it returns how many it published.
func (e *env) streamTo(path string, pad int, tick time.Duration, watchers []subscriber, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		seq := 0
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				out <- seq
				return
			case <-t.C:
			}
			e.srv.Nes().Publish(path, publication(seq, pad), nil)
			seq++
			if seq%20 == 0 {
				waitDelivered(e.ctx, watchers, map[string]int{path: seq}, 20*time.Second)
			}
		}
	}()
	return out
}

// phaseConnect: perKind subscribers of every kind on one path; every publication reaches
// each exactly once, in order.
func phaseConnect(e *env, r *row) {
	const path = "/soak/connect"
	subs, err := e.connectMany(e.srv.addr, allKinds, e.cfg.perKind, []string{path}, false)
	r.conns = len(subs)
	if err != nil {
		r.fail("connect: %v", err)
	}
	if n := e.srv.subscribers(path); n != len(subs) {
		r.fail("%d subscribers on the server, %d clients", n, len(subs))
	}
	e.publish(path, 0, e.cfg.msgs, 100, 10, subs)
	r.msgs = e.cfg.msgs
	if !waitDelivered(e.ctx, subs, map[string]int{path: r.msgs}, 30*time.Second) {
		r.fail("not every subscriber had every publication within 30 s: %s", behind(subs, map[string]int{path: r.msgs}))
	}
	tallyInto(r, subs, map[string]int{path: r.msgs})
	closeAll(subs)
	if !waitUntil(e.ctx, grace+5*time.Second, func() bool { return e.srv.sockets() == 0 }) {
		r.fail("%d sockets left on the server after every client closed", e.srv.sockets())
	}
}

// phaseChurn: workers open a connection of a random kind, subscribe, stay a moment and leave,
// politely or with an RST, over and over, while watchers receive a steady stream.
func phaseChurn(e *env, r *row) {
	const path = "/soak/churn"
	watchers := e.watch(r, path)
	stop := make(chan struct{})
	published := e.streamTo(path, 200, 10*time.Millisecond, watchers, stop)

	var (
		mu     sync.Mutex
		conns  int
		errs   int
		first  error
		wg     sync.WaitGroup
		until  = time.Now().Add(e.cfg.churnFor)
		kindsN = map[string]int{}
	)
	for w := 0; w < e.cfg.churnWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(until) && e.ctx.Err() == nil {
				k := allKinds[rand.IntN(len(allKinds))]
				ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
				s, err := connect(ctx, e.srv.addr, k, []string{path}, false)
				cancel()
				mu.Lock()
				if err != nil {
					errs++
					if first == nil {
						first = fmt.Errorf("%s: %w", k, err)
					}
				} else {
					conns++
					kindsN[k]++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
				if raw, ok := s.(*rawSub); ok && rand.IntN(2) == 0 {
					raw.resetConn() // gone without a close frame
				}
				s.close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	n := <-published
	r.conns += conns
	r.msgs = n
	if errs > 0 {
		r.fail("%d of %d churn connections failed, the first: %v", errs, errs+conns, first)
	}
	if !waitDelivered(e.ctx, watchers, map[string]int{path: n}, 30*time.Second) {
		r.fail("the watchers did not have every publication within 30 s: %s", behind(watchers, map[string]int{path: r.msgs}))
	}
	tallyInto(r, watchers, map[string]int{path: n})
	if !waitUntil(e.ctx, grace+heartbeatEvery+heartbeatWait+5*time.Second, func() bool { return e.srv.sockets() == len(watchers) }) {
		r.fail("%d sockets on the server after the churn, %d watchers", e.srv.sockets(), len(watchers))
	}
	closeAll(watchers)
	e.t.Logf("churn connections by kind: %v", kindsN)
}

// phaseSlow: slow consumers (behind a relay that stops taking what the server sends) and
// vanishing ones (behind a relay that resets every connection at once, then refuses new ones)
// of every kind, while the watchers receive 1 KiB publications. The watchers must miss
// nothing; every slow and vanished socket must be dropped within the bounds.
func phaseSlow(e *env, r *row) {
	const path = "/soak/slow"
	watchers := e.watch(r, path)
	slowRelay, err := newRelay(e.srv.addr)
	if err != nil {
		r.fail("relay: %v", err)
		return
	}
	defer slowRelay.close()
	vanishRelay, err := newRelay(e.srv.addr)
	if err != nil {
		r.fail("relay: %v", err)
		return
	}
	defer vanishRelay.close()
	slow, err := e.connectMany(slowRelay.addr(), allKinds, e.cfg.slow, []string{path}, false)
	r.conns += len(slow)
	if err != nil {
		r.fail("slow consumers: %v", err)
	}
	vanishing, err := e.connectMany(vanishRelay.addr(), allKinds, e.cfg.vanish, []string{path}, false)
	r.conns += len(vanishing)
	if err != nil {
		r.fail("vanishing consumers: %v", err)
	}
	// The sockets of the relays' clients, as the server names them.
	var slowAddrs, vanishAddrs []string
	e.srv.Nes().EachSocket(func(s *heraldSocket) bool {
		switch a := s.RemoteAddr(); {
		case slowRelay.isClient(a):
			slowAddrs = append(slowAddrs, a)
		case vanishRelay.isClient(a):
			vanishAddrs = append(vanishAddrs, a)
		}
		return true
	})
	if len(slowAddrs) != len(slow) || len(vanishAddrs) != len(vanishing) {
		r.fail("server sockets: %d slow of %d clients, %d vanishing of %d", len(slowAddrs), len(slow), len(vanishAddrs), len(vanishing))
	}

	stallAt := time.Now()
	slowRelay.stall(true)
	var vanishAt time.Time
	fellBehind := false
	for seq := 0; seq < e.cfg.slowMsgs; seq++ {
		r.msgs = seq + 1
		if seq == e.cfg.slowMsgs/4 {
			vanishAt = time.Now()
			vanishRelay.vanish()
		}
		e.srv.Nes().Publish(path, publication(seq, 1000), nil)
		if (seq+1)%20 == 0 && !fellBehind {
			if !waitDelivered(e.ctx, watchers, map[string]int{path: seq + 1}, 20*time.Second) {
				// Said once; the phase goes on unpaced, so that the slow and the vanishing
				// consumers are still tested.
				r.fail("the watchers fell behind at publication %d: %s", seq, behind(watchers, map[string]int{path: seq + 1}))
				fellBehind = true
			}
		}
	}
	publishedAt := time.Now()
	if !waitDelivered(e.ctx, watchers, map[string]int{path: r.msgs}, 30*time.Second) {
		r.fail("the watchers did not have every publication within 30 s: %s", behind(watchers, map[string]int{path: r.msgs}))
	}
	tallyInto(r, watchers, map[string]int{path: r.msgs})

	// The bounds. A slow socket passes SendQueueLimit (or the fallback's BufferBytes) once
	// that much is published after the kernel's buffers are full, well before the last
	// publication, or its writes time out (SendTimeout), or it misses a heartbeat: whichever
	// comes first, all are over SendTimeout + the heartbeat + the grace after the last
	// publication. A vanished one is dropped at once (WebSocket: the RST) or when its session's
	// grace ends (fallback), and the heartbeat catches anything else.
	slowBound := publishedAt.Add(sendTimeout + heartbeatEvery + heartbeatWait + grace + 2*time.Second)
	vanishBound := vanishAt.Add(grace + heartbeatEvery + heartbeatWait + 2*time.Second)
	dropped := func(addrs []string) (n int, last time.Time) {
		for _, a := range addrs {
			if at, ok := e.srv.closedAt(a); ok {
				n++
				if at.After(last) {
					last = at
				}
			}
		}
		return
	}
	waitUntil(e.ctx, time.Until(slowBound), func() bool {
		a, _ := dropped(slowAddrs)
		b, _ := dropped(vanishAddrs)
		return a == len(slowAddrs) && b == len(vanishAddrs)
	})
	ns, lastSlow := dropped(slowAddrs)
	nv, lastVanish := dropped(vanishAddrs)
	r.dropped = fmt.Sprintf("slow %d/%d in %.1fs, gone %d/%d in %.1fs", ns, len(slowAddrs), since(stallAt, lastSlow), nv, len(vanishAddrs), since(vanishAt, lastVanish))
	if ns < len(slowAddrs) {
		r.fail("%d of %d slow consumers still connected %.1fs after the last publication", len(slowAddrs)-ns, len(slowAddrs), time.Since(publishedAt).Seconds())
	} else if lastSlow.After(slowBound) {
		r.fail("the last slow consumer went %.1fs after the last publication, past the bound", lastSlow.Sub(publishedAt).Seconds())
	}
	if nv < len(vanishAddrs) {
		r.fail("%d of %d vanished consumers still on the server %.1fs after they vanished", len(vanishAddrs)-nv, len(vanishAddrs), time.Since(vanishAt).Seconds())
	} else if lastVanish.After(vanishBound) {
		r.fail("the last vanished consumer went %.1fs after it vanished, past the bound", lastVanish.Sub(vanishAt).Seconds())
	}
	slowRelay.vanish()
	closeAll(slow)
	closeAll(vanishing)
	closeAll(watchers)
	slowRelay.close()
	vanishRelay.close()
	if !waitUntil(e.ctx, grace+5*time.Second, func() bool { return e.srv.sockets() == 0 }) {
		r.fail("%d sockets left on the server after every client closed", e.srv.sockets())
	}
}

func since(from, to time.Time) float64 {
	if to.IsZero() || from.IsZero() {
		return 0
	}
	return to.Sub(from).Seconds()
}

// phaseReconnectStorm: perKind reconnecting subscribers of every kind; the server restarts
// (a new process would do the same: every socket and session gone, connections refused for
// a moment) and later drops everyone at once; the clients come back with jittered backoff and
// resubscribe, and every publication made while they are connected reaches each exactly once.
// nes keeps nothing for a disconnected client: nothing is published while they are away.
func phaseReconnectStorm(e *env, r *row) {
	const path = "/soak/storm"
	subs, err := e.connectMany(e.srv.addr, allKinds, e.cfg.perKind, []string{path}, true)
	r.conns = len(subs)
	if err != nil {
		r.fail("connect: %v", err)
	}
	third := e.cfg.msgs / 3
	e.publish(path, 0, third, 100, 10, subs)

	back := func(what string) {
		start := time.Now()
		ok := waitUntil(e.ctx, 60*time.Second, func() bool { return e.srv.subscribers(path) >= len(subs) })
		took := time.Since(start)
		if !ok {
			r.fail("after the %s, %d of %d clients resubscribed within 60 s", what, e.srv.subscribers(path), len(subs))
			return
		}
		e.t.Logf("after the %s, all %d resubscribed in %.1fs", what, len(subs), took.Seconds())
		r.dropped += fmt.Sprintf("%s: back in %.1fs ", what, took.Seconds())
		// No ghost sockets: a session left over from before would be a second socket.
		if !waitUntil(e.ctx, grace+heartbeatEvery+heartbeatWait+2*time.Second, func() bool { return e.srv.sockets() == len(subs) }) {
			r.fail("after the %s, %d sockets for %d clients", what, e.srv.sockets(), len(subs))
		}
	}
	if err := e.srv.restart(500 * time.Millisecond); err != nil {
		r.fail("restart: %v", err)
		closeAll(subs)
		return
	}
	back("restart")
	e.publish(path, third, 2*third, 100, 10, subs)

	e.srv.Nes().EachSocket(func(s *heraldSocket) bool { go s.Disconnect(); return true })
	waitUntil(e.ctx, 10*time.Second, func() bool { return e.srv.subscribers(path) < len(subs)/2 })
	back("drop-all")
	e.publish(path, 2*third, 3*third, 100, 10, subs)
	r.msgs = 3 * third
	r.conns += reconnections(subs)
	if !waitDelivered(e.ctx, subs, map[string]int{path: r.msgs}, 30*time.Second) {
		r.fail("not every subscriber had every publication within 30 s: %s", behind(subs, map[string]int{path: r.msgs}))
	}
	tallyInto(r, subs, map[string]int{path: r.msgs})
	r.dropped = strings.TrimSpace(r.dropped)
	closeAll(subs)
	if !waitUntil(e.ctx, grace+5*time.Second, func() bool { return e.srv.sockets() == 0 }) {
		r.fail("%d sockets left on the server after every client closed", e.srv.sockets())
	}
}

// reconnections counts the connections the subscribers made after their first.
func reconnections(subs []subscriber) int {
	n := 0
	for _, s := range subs {
		switch s := s.(type) {
		case *goSub:
			n += int(s.connects.Load()) - 1
		case *rawSub:
			n += int(s.hellos.Load()) - 1
		}
	}
	return n
}

func numCPU() int { return runtimeNumCPU() }
