package client

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestDelayCeilings: with the jitter source at its top, each delay is its attempt's ceiling:
// doubling from Min and capped at Max, without overflow for any attempt.
func TestDelayCeilings(t *testing.T) {
	c := &Client{opts: (&Options{Backoff: Backoff{Min: 100 * time.Millisecond, Max: time.Second}}).withDefaults(),
		random: func() float64 { return 1 }}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		assert.Equal(t, w*time.Millisecond, c.delay(i), "attempt %d", i)
	}
	for _, n := range []int{31, 32, 63, 64, 1000} {
		assert.Equal(t, time.Second, c.delay(n), "attempt %d", n)
	}
	c.random = func() float64 { return 0.25 }
	assert.Equal(t, 250*time.Millisecond, c.delay(10), "the draw scales the capped ceiling")
}
