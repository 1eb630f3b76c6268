package main

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var last []time.Duration // 100 publishes, 1 to 100 ms, sorted
	for i := 1; i <= 100; i++ {
		last = append(last, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{
		{0.5, 50500}, // the mean of the 50th and 51st, not the 51st
		{0.99, 99010},
		{1, 100000},
		{0, 1000},
	} {
		if got := quantile(last, c.q); got != c.want {
			t.Errorf("quantile(%v) = %d µs, want %d", c.q, got, c.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of none = %d", got)
	}
}
