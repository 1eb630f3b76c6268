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
