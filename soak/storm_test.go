//go:build unix

package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
)

type heraldSocket = herald.Socket

func runtimeNumCPU() int { return runtime.NumCPU() }

// subChurnPaths are the paths the subscribe storm subscribes to and leaves; nothing counts
// what arrives on them.
const subChurnPaths = 16

func subChurnPath(k int) string { return fmt.Sprintf("/soak/subchurn/%d", k) }

// phasePubSubStorm: stormClients of every kind subscribed to stormPaths paths, each path
// published by one of several publishers at once, while every client subscribes to and
// leaves other paths from several goroutines at once (raw clients without waiting for the
// replies). Every publication on the stable paths reaches every client exactly once, in
// order; afterwards the server holds exactly the subscriptions the clients hold.
func phasePubSubStorm(e *env, r *row) {
	paths := make([]string, e.cfg.stormPaths)
	for i := range paths {
		paths[i] = fmt.Sprintf("/soak/pubsub/%d", i)
	}
	subs, err := e.connectMany(e.srv.addr, allKinds, e.cfg.stormClients, paths, false)
	r.conns = len(subs)
	if err != nil {
		r.fail("connect: %v", err)
	}
	for _, p := range paths {
		if n := e.srv.subscribers(p); n != len(subs) {
			r.fail("%s: %d subscribers on the server, %d clients", p, n, len(subs))
			break
		}
	}

	// One path joined by every raw client three times at once (the Go client joins it once):
	// a socket must be its subscriber once, however many subs of it were processed together.
	const twice = "/soak/twice/0"
	for _, s := range subs {
		switch s := s.(type) {
		case *rawSub:
			var replies []<-chan nesMsg
			for i := 0; i < 3; i++ {
				ch, err := s.call(map[string]any{"type": "sub", "path": twice})
				if err != nil {
					r.fail("sub %s: %v", twice, err)
					break
				}
				replies = append(replies, ch)
			}
			for _, ch := range replies {
				select {
				case m, ok := <-ch:
					if !ok || m.StatusCode >= 400 {
						r.fail("sub %s: answered %d (connection open: %v)", twice, m.StatusCode, ok)
					}
				case <-time.After(20 * time.Second):
					r.fail("sub %s: no answer within 20 s", twice)
				}
			}
		case *goSub:
			if _, err := s.c.Subscribe(e.ctx, twice, s.handle); err != nil {
				r.fail("sub %s: %v", twice, err)
			}
		}
	}
	if n := e.srv.subscribers(twice); n != len(subs) {
		r.fail("%s: %d subscriptions on the server for %d clients that each joined it (raw ones three times at once)", twice, n, len(subs))
	}
	subsBefore := e.srv.subscribes.Load() - e.srv.unsubscribes.Load()
	if subsBefore != int64(len(subs)) {
		r.fail("OnSubscribe of %s ran %d times for %d sockets (not once per socket)", twice, subsBefore, len(subs))
	}

	// The publishers: each owns some paths and publishes them in turn, waiting for the
	// subscribers every 20 rounds. A sprayer publishes on the churned paths.
	var wg sync.WaitGroup
	publishers := min(8, len(paths))
	stalls := make(chan string, publishers)
	for j := 0; j < publishers; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var own []string
			for i := j; i < len(paths); i += publishers {
				own = append(own, paths[i])
			}
			for seq := 0; seq < e.cfg.stormMsgs; seq++ {
				for _, p := range own {
					e.srv.Nes().Publish(p, publication(seq, 50), nil)
				}
				if (seq+1)%20 == 0 || seq == e.cfg.stormMsgs-1 {
					sent := map[string]int{}
					for _, p := range own {
						sent[p] = seq + 1
					}
					if !waitDelivered(e.ctx, subs, sent, 20*time.Second) {
						stalls <- fmt.Sprintf("publisher %d: subscribers behind at %d: %s", j, seq, behind(subs, sent))
						return
					}
				}
			}
		}()
	}
	sprayStop := make(chan struct{})
	var sprayWG sync.WaitGroup
	sprayWG.Add(1)
	go func() {
		defer sprayWG.Done()
		for i := 0; ; i++ {
			select {
			case <-sprayStop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			e.srv.Nes().Publish(subChurnPath(i%subChurnPaths), map[string]any{"spray": i}, nil)
		}
	}()

	// The subscribe storm.
	var (
		mu      sync.Mutex
		opErrs  int
		firstOp error
		ops     int
	)
	for _, s := range subs {
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, errs, first := subStorm(e.ctx, s, e.cfg.subOps/3)
				mu.Lock()
				ops += n
				opErrs += errs
				if firstOp == nil {
					firstOp = first
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	close(sprayStop)
	sprayWG.Wait()
	close(stalls)
	for s := range stalls {
		r.fail("%s", s)
	}
	if opErrs > 0 {
		r.fail("%d of %d subscribe/unsubscribe calls failed, the first: %v", opErrs, ops, firstOp)
	}

	// Everyone leaves the churned paths, one call at a time now; the server must then hold
	// none of them, and every stable one.
	for _, s := range subs {
		for k := 0; k < subChurnPaths; k++ {
			if err := unsubscribe(e.ctx, s, subChurnPath(k)); err != nil {
				r.fail("final unsubscribe %s: %v", subChurnPath(k), err)
				break
			}
		}
	}
	for k := 0; k < subChurnPaths; k++ {
		if n := e.srv.subscribers(subChurnPath(k)); n != 0 {
			r.fail("%s: %d sockets still subscribed after every client left it", subChurnPath(k), n)
		}
	}
	for _, p := range paths {
		if n := e.srv.subscribers(p); n != len(subs) {
			r.fail("%s: %d subscribers after the storm, %d clients", p, n, len(subs))
			break
		}
	}
	e.publish(twice, 0, e.cfg.stormMsgs, 50, 20, subs)
	sent := map[string]int{twice: e.cfg.stormMsgs}
	for _, p := range paths {
		sent[p] = e.cfg.stormMsgs
	}
	r.msgs = e.cfg.stormMsgs * (len(paths) + 1)
	if !waitDelivered(e.ctx, subs, sent, 30*time.Second) {
		r.fail("not every subscriber had every publication within 30 s: %s", behind(subs, sent))
	}
	tallyInto(r, subs, sent)
	r.dropped = fmt.Sprintf("%d sub/unsub ops", ops)
	if held := e.srv.subscribes.Load() - e.srv.unsubscribes.Load(); held != subsBefore {
		r.fail("OnSubscribe ran %d times more than OnUnsubscribe after the storm, %d before it (each client holds %s only)", held, subsBefore, twice)
	}
	closeAll(subs)
	if !waitUntil(e.ctx, grace+5*time.Second, func() bool { return e.srv.sockets() == 0 }) {
		r.fail("%d sockets left on the server after every client closed", e.srv.sockets())
	}
	if !waitUntil(e.ctx, 5*time.Second, func() bool { return e.srv.subscribes.Load() == e.srv.unsubscribes.Load() }) {
		r.fail("OnSubscribe ran %d times, OnUnsubscribe %d: not paired once every socket closed", e.srv.subscribes.Load(), e.srv.unsubscribes.Load())
	}
}

// subStorm subscribes to and leaves churned paths n times. A raw client fires its sub and
// unsub messages without waiting for the replies, so the server has many of one socket's
// in flight at once; errors of those are the server's answers, which may be refusals, and are
// not counted. The Go client waits for each call.
func subStorm(ctx context.Context, s subscriber, n int) (ops, errs int, first error) {
	for i := 0; i < n && ctx.Err() == nil; i++ {
		p := subChurnPath(rand.IntN(subChurnPaths))
		var err error
		switch s := s.(type) {
		case *rawSub:
			typ := "sub"
			if rand.IntN(2) == 0 {
				typ = "unsub"
			}
			_, err = s.call(map[string]any{"type": typ, "path": p})
		case *goSub:
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			var sub *client.Subscription
			sub, err = s.c.Subscribe(cctx, p, func(client.Update) {})
			if err == nil {
				switch rand.IntN(3) {
				case 0:
					err = sub.Unsubscribe(cctx)
				case 1:
					err = s.c.Unsubscribe(cctx, p)
				}
			}
			cancel()
		}
		ops++
		if err != nil {
			errs++
			if first == nil {
				first = err
			}
		}
	}
	return
}

// unsubscribe leaves path and waits for the server's answer.
func unsubscribe(ctx context.Context, s subscriber, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	switch s := s.(type) {
	case *rawSub:
		ch, err := s.call(map[string]any{"type": "unsub", "path": path})
		if err != nil {
			return err
		}
		select {
		case m, ok := <-ch:
			if !ok {
				return fmt.Errorf("connection lost")
			}
			if m.StatusCode >= 400 && m.StatusCode != 404 {
				return fmt.Errorf("unsub answered %d", m.StatusCode)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case *goSub:
		return s.c.Unsubscribe(ctx, path)
	}
	return nil
}
