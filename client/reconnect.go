package client

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// startReconnecting starts the reconnection loop. c.mu is held.
func (c *Client) startReconnecting() {
	c.setState(stateReconnecting)
	done := make(chan struct{})
	c.loopDone = done
	stop := c.stop
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		c.reconnect(stop)
	}()
}

// reconnect makes attempts, with a backoff between them, until one succeeds, the outage's
// attempts (Options.MaxRetries) run out, the server refuses the client for good, or stop is
// cancelled.
func (c *Client) reconnect(stop context.Context) {
	var lastErr error
	for n := 1; ; n++ {
		if c.opts.MaxRetries > 0 && n > c.opts.MaxRetries {
			c.giveUp(stop, lastErr)
			return
		}
		c.mu.Lock()
		delay := c.delay(c.backoffN)
		c.backoffN++
		c.mu.Unlock()
		event := ReconnectEvent{Attempt: n, Delay: delay, Err: lastErr}
		c.emit(func() {
			if c.opts.OnReconnect != nil {
				c.opts.OnReconnect(event)
			}
		})
		wait := time.NewTimer(delay)
		select {
		case <-stop.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		err := c.open(stop, stop, true)
		switch {
		case err == nil, stop.Err() != nil:
			return
		case permanent(err, c.opts.AuthFunc != nil):
			c.giveUp(stop, err)
			return
		}
		c.reportError(err)
		lastErr = err
	}
}

// delay draws the wait before an attempt: uniform in [0, min(Max, Min·2^attempt)]. c.mu is
// held (for c.random, which tests replace).
func (c *Client) delay(attempt int) time.Duration {
	b := c.opts.Backoff
	ceiling := b.Max
	if attempt < 32 && b.Min<<attempt < b.Max && b.Min<<attempt > 0 {
		ceiling = b.Min << attempt
	}
	return time.Duration(c.random() * float64(ceiling))
}

// permanent reports whether a failed hello means the server will refuse the client however
// often it tries: a 4xx other than 401/403 (with an AuthFunc that may fetch better
// credentials), 408 and 429. Network failures, timeouts and 5xx are worth another try.
func permanent(err error, canRefreshAuth bool) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.Kind != KindServer || e.StatusCode >= 500:
		return false
	}
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return !canRefreshAuth
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return true
}

// giveUp ends a reconnection loop that will not succeed.
func (c *Client) giveUp(stop context.Context, err error) {
	c.mu.Lock()
	if stop.Err() != nil {
		c.mu.Unlock()
		return
	}
	c.loopDone = nil
	c.setState(stateIdle)
	c.cancelStop()
	c.mu.Unlock()
	c.emit(func() {
		if c.opts.OnDisconnect != nil {
			c.opts.OnDisconnect(DisconnectEvent{Err: err, WillReconnect: false})
		}
	})
}
