package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- { // 20 fan-outs, 1 to 20 ms, in no particular order
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    int
		want time.Duration
	}{
		{50, 10500 * time.Microsecond}, // the mean of the two middles, not the lower one
		{90, 18100 * time.Microsecond},
		{0, time.Millisecond},
		{100, 20 * time.Millisecond},
	} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%d = %v, want %v", c.p, got, c.want)
		}
	}
	if ds[0] != 20*time.Millisecond {
		t.Error("percentile sorted its argument")
	}
	if got := percentile([]time.Duration{7 * time.Millisecond}, 50); got != 7*time.Millisecond {
		t.Errorf("p50 of one = %v", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of none = %v", got)
	}
}

// TestDelivered checks that the fan-out is done only when every stream has had the event as
// many times as expected: one stream's extra copies do not make up for another's missing.
func TestDelivered(t *testing.T) {
	c := newClients(3)
	done := c.expect("k", 2)
	for _, i := range []int{0, 0, 0, 1, 1, 2} { // 6 deliveries, but stream 2 has had one
		c.delivered(i, []byte("k"))
	}
	c.delivered(2, []byte("other"))
	select {
	case <-done:
		t.Fatal("done with stream 2 one event short")
	default:
	}
	if c.count() != 5 || c.duplicates() != 1 {
		t.Errorf("count %d, duplicates %d; want 5 and 1", c.count(), c.duplicates())
	}
	c.delivered(2, []byte("k"))
	select {
	case <-done:
	default:
		t.Fatal("not done once every stream had the event twice")
	}
}
