package harness

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.5, 7},
		{[]float64{7}, 0.9, 7},
		{[]float64{1, 2, 3}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5}, // an even count: the mean of the two middles
		{[]float64{1, 2, 3, 4}, 0, 1},
		{[]float64{1, 2, 3, 4}, 1, 4},
		{[]float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.9, 90},
		{[]float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, 0.9, 81}, // between the 9th and 10th
	} {
		if got := Quantile(c.xs, c.q); !near(got, c.want) {
			t.Errorf("Quantile(%v, %v) = %v, want %v", c.xs, c.q, got, c.want)
		}
	}
}

func TestQuantileDurations(t *testing.T) {
	ds := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond}
	if got := time.Duration(Quantile(ds, 0.5)); got != 3*time.Millisecond {
		t.Errorf("median of %v = %v, want 3ms", ds, got)
	}
}

func TestSummarize(t *testing.T) {
	xs := []float64{5, 1, 4, 2}
	s := Summarize(xs)
	if s.N != 4 || s.Lo != 1 || s.Hi != 5 || !near(s.Med, 3) {
		t.Errorf("Summarize(%v) = %+v, want median 3 of 4 in 1–5", xs, s)
	}
	if !slices.Equal(xs, []float64{5, 1, 4, 2}) {
		t.Errorf("Summarize sorted its argument: %v", xs)
	}
	if s := Summarize(nil); s.N != 0 {
		t.Errorf("Summarize(nil) = %+v", s)
	}
}

func TestCell(t *testing.T) {
	base := Summarize([]float64{10, 10, 10})
	for _, c := range []struct {
		s      Stat
		isBase bool
		base   Stat
		want   string
	}{
		{Stat{}, false, base, "—"},
		{Summarize([]float64{10, 9, 11}), true, base, "10.0 (9.0–11.0) 1x"},
		{Summarize([]float64{12, 11, 13}), false, base, "12.0 (11.0–13.0) 1.20x"}, // the server's over the base's
		{Summarize([]float64{8}), false, base, "8.0 0.80x"},
		{Stat{Med: 8, Lo: 7, Hi: 9, N: 2, Noisy: true}, false, Stat{}, "8.0† (7.0–9.0)"},
	} {
		if got := Cell(c.s, Fixed(1), c.base, c.isBase); got != c.want {
			t.Errorf("Cell(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestBest(t *testing.T) {
	stats := map[string]Stat{
		"herald": Summarize([]float64{1}),
		"a":      Summarize([]float64{5}),
		"b":      Summarize([]float64{3}),
		"c":      {},
	}
	servers := []string{"herald", "a", "b", "c"}
	skip := func(s string) bool { return s == "herald" }
	stat := func(s string) Stat { return stats[s] }
	if s, st := Best(servers, skip, stat, true); s != "a" || st.Med != 5 {
		t.Errorf("Best(most) = %s %v, want a 5", s, st.Med)
	}
	if s, st := Best(servers, skip, stat, false); s != "b" || st.Med != 3 {
		t.Errorf("Best(least) = %s %v, want b 3 (herald skipped, c has no samples)", s, st.Med)
	}
	if s, _ := Best([]string{"herald", "c"}, skip, stat, false); s != "" {
		t.Errorf("Best with no peer = %q, want none", s)
	}
}

func TestWindowLoad(t *testing.T) {
	w := Window{ServerCPU: 1.8, busy: 3.9}
	l := w.Load(2, 1.6)
	if !near(l.Server, 0.9) || !near(l.Client, 0.8) || !near(l.Other, 0.25) {
		t.Errorf("Load = %+v, want server 0.9, client 0.8, other 0.25 cores", l)
	}
	// Ticks make the machine's total a little short of the two processes' now and then.
	if l := (Window{ServerCPU: 1, busy: 1.9}).Load(1, 1); l.Other != 0 {
		t.Errorf("Load.Other = %v, want 0 when the processes account for everything", l.Other)
	}
}

func TestEchoesRates(t *testing.T) {
	e := Echoes{Window: Window{ServerCPU: 0.5}, Msgs: 100000, Secs: 2}
	if !near(e.Rate(), 50000) {
		t.Errorf("Rate = %v, want 50000 msgs/s", e.Rate())
	}
	if !near(e.ServerPerMsg(), 5) {
		t.Errorf("ServerPerMsg = %v, want 5 µs", e.ServerPerMsg())
	}
	p := Publishes{Pubs: 100}
	if !near(p.PerPub(0.25), 2.5) {
		t.Errorf("PerPub(0.25 s) = %v, want 2.5 ms", p.PerPub(0.25))
	}
}

func TestQuietly(t *testing.T) {
	c := &Config{MaxOther: 0.25, Retries: 2, Budget: time.Hour}
	run := func(others ...float64) (Load, int, error) {
		i := 0
		l, err := Quietly(c, "test", time.Now(), func() (Load, error) {
			if i >= len(others) {
				t.Fatalf("measured %d times, want at most %d", i+1, len(others))
			}
			o := others[i]
			i++
			if o < 0 {
				return Load{}, errors.New("failed")
			}
			return Load{Other: o}, nil
		})
		return l, i, err
	}
	if l, n, err := run(0.1); err != nil || n != 1 || l.Other != 0.1 {
		t.Errorf("quiet window: %v after %d runs (%v), want 0.1 after 1", l.Other, n, err)
	}
	if l, n, err := run(0.9, 0.5, 0.7); err != nil || n != 3 || l.Other != 0.5 {
		t.Errorf("busy windows: kept %v after %d runs (%v), want the quietest, 0.5, after 3", l.Other, n, err)
	}
	if l, n, err := run(0.9, -1, 0.2); err != nil || n != 3 || l.Other != 0.2 {
		t.Errorf("a failed rerun: kept %v after %d runs (%v), want 0.2 after 3", l.Other, n, err)
	}
	if _, n, err := run(-1); err == nil || n != 1 {
		t.Errorf("a failed first run: %d runs, error %v; want 1 and the error", n, err)
	}
	c.Budget = 0
	if l, n, _ := run(0.9); n != 1 || l.Other != 0.9 {
		t.Errorf("over budget: %d runs, want 1 (no rerun), kept %v", n, l.Other)
	}
}

func TestNoisy(t *testing.T) {
	c := &Config{MaxOther: 0.25}
	if Noisy(c, []Load{{Other: 0.1}, {Other: 0.25}}) {
		t.Error("Noisy at 0.25 cores with -max-other 0.25")
	}
	if !Noisy(c, []Load{{Other: 0.1}, {Other: 0.3}}) {
		t.Error("not Noisy with one window at 0.3 cores")
	}
}

func TestParseInts(t *testing.T) {
	ns, bad := ParseInts("1000, 10000 5", 1, 19000)
	if bad != "" || !slices.Equal(ns, []int{1000, 10000, 5}) {
		t.Errorf("ParseInts = %v %q", ns, bad)
	}
	for _, s := range []string{"0", "20000", "x", "1,,-3"} {
		if _, bad := ParseInts(s, 1, 19000); bad == "" {
			t.Errorf("ParseInts(%q) took it", s)
		}
	}
}

func TestParseList(t *testing.T) {
	known := []string{"herald", "gws"}
	got, err := ParseList("herald, gws,herald herald@-api=read+-go=false", known, true)
	if err != nil || !slices.Equal(got, []string{"herald", "gws", "herald@-api=read+-go=false"}) {
		t.Errorf("ParseList = %v, %v", got, err)
	}
	if _, err := ParseList("herald@-api=read", known, false); err == nil {
		t.Error("ParseList took a variant without variants")
	}
	if _, err := ParseList("nginx", known, true); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("ParseList(nginx) error = %v", err)
	}
	if _, err := ParseList(" , ", known, true); err == nil {
		t.Error("ParseList took an empty list")
	}
	name, args := SplitServer("herald@-api=read+-go=false")
	if name != "herald" || !slices.Equal(args, []string{"-api=read", "-go=false"}) {
		t.Errorf("SplitServer = %q %q", name, args)
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[int]string{64: "64 B", 1024: "1 KiB", 16384: "16 KiB", 1 << 20: "1 MiB", 1500: "1500 B", 3 << 19: "1536 KiB"} {
		if got := SizeName(n); got != want {
			t.Errorf("SizeName(%d) = %q, want %q", n, got, want)
		}
	}
}
