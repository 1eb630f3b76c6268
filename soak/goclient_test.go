//go:build unix

package soak

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/websocket"
)

// The kinds of load client.
const (
	kindRaw  = "raw-ws" // rawSub: WebSocket frames written by hand
	kindWS   = client.TransportWebSocket
	kindSSE  = client.TransportSSE
	kindPoll = client.TransportPoll
)

var allKinds = []string{kindRaw, kindWS, kindSSE, kindPoll}

// goSub is a subscriber through herald's Go client, over one transport.
type goSub struct {
	transport string
	c         *client.Client
	tr        *tracker
	connects  atomic.Int64
	queueFull atomic.Int64 // ErrHandlerQueueFull heard: updates the client dropped by its documented bound

	mu       sync.Mutex
	lastDrop string // why the last connection ended, when the client did not ask
}

type goSubOptions struct {
	noReconnect bool
}

func newGoSub(ctx context.Context, addr, transport string, paths []string, o goSubOptions) (*goSub, error) {
	s := &goSub{tr: newTracker(), transport: transport}
	c, err := client.New("ws://"+addr+"/", &client.Options{
		Transports:     []string{transport},
		Dial:           &websocket.DialOptions{Proxy: websocket.NoProxy},
		Backoff:        client.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second, ResetAfter: 5 * time.Second},
		ConnectTimeout: 20 * time.Second,
		Timeout:        20 * time.Second,
		NoReconnect:    o.noReconnect,
		HandlerQueue:   1 << 14,
		OnConnect:      func(client.ConnectEvent) { s.connects.Add(1) },
		OnDisconnect: func(ev client.DisconnectEvent) {
			if !ev.Requested {
				s.mu.Lock()
				s.lastDrop = fmt.Sprintf("%v (close code %d)", ev.Err, websocket.CloseStatus(ev.Err))
				s.mu.Unlock()
			}
		},
		OnHeartbeatTimeout: func(bool) {
			s.mu.Lock()
			s.lastDrop = "the client's heartbeat timeout: the server was silent"
			s.mu.Unlock()
		},
		OnError: func(err error) {
			if errors.Is(err, client.ErrHandlerQueueFull) {
				s.queueFull.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	s.c = c
	for _, p := range paths {
		// Recorded before Connect: the hello carries them.
		if _, err := c.Subscribe(ctx, p, s.handle); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *goSub) handle(u client.Update) {
	if u.Revoked {
		return
	}
	s.tr.record(u.Path, u.Message)
}

func (s *goSub) close() { s.c.Close() }

// subscriber is either kind, as a phase sees it.
type subscriber interface {
	tracker() *tracker
	kind() string
	dropReason() string // why the connection was lost, or ""
	close()
}

func (s *goSub) tracker() *tracker  { return s.tr }
func (s *rawSub) tracker() *tracker { return s.tr }
func (s *goSub) kind() string       { return s.transport }
func (s *rawSub) kind() string      { return kindRaw }

// connect makes a subscriber of kind to paths at addr; a raw one waits for its hello reply.
func connect(ctx context.Context, addr, kind string, paths []string, reconnect bool) (subscriber, error) {
	if kind == kindRaw {
		s := newRawSub(addr, paths, reconnect)
		select {
		case <-s.ready:
			return s, nil
		case <-s.done:
			return nil, s.lastErr()
		case <-ctx.Done():
			s.close()
			return nil, ctx.Err()
		}
	}
	return newGoSub(ctx, addr, kind, paths, goSubOptions{noReconnect: !reconnect})
}

func (s *rawSub) lastErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *goSub) dropReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastDrop
}

func (s *rawSub) dropReason() string {
	if err := s.lastErr(); err != nil {
		return err.Error()
	}
	return ""
}
