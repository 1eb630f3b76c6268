package harness

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/herald-go/herald/bench/internal/proc"
)

// Stat is the median of some samples and their range.
type Stat struct {
	Med, Lo, Hi float64
	N           int  // samples
	Noisy       bool // some samples were taken while other processes were busy (marks the cell †)
}

// Summarize returns the median and range of xs.
func Summarize(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Stat{Med: Quantile(s, 0.5), Lo: s[0], Hi: s[len(s)-1], N: len(s)}
}

// Pick summarizes f over rs.
func Pick[T any](rs []T, f func(T) float64) Stat {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return Summarize(xs)
}

// Quantile returns the q-quantile of sorted xs (numbers or durations), interpolating between
// neighbours: of an even count, the median is the mean of the two middles.
func Quantile[T ~float64 | ~int64](xs []T, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	p := q * float64(len(xs)-1)
	i := int(p)
	if i+1 >= len(xs) {
		return float64(xs[len(xs)-1])
	}
	return float64(xs[i]) + (p-float64(i))*float64(xs[i+1]-xs[i])
}

// Rate formats a rate: 812, 81.3k, 1.25M.
func Rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// Fixed returns a formatter with digits decimals.
func Fixed(digits int) func(float64) string {
	return func(v float64) string { return fmt.Sprintf("%.*f", digits, v) }
}

// Cell renders "median (min–max) ratio", the ratio being this median over base's: "1x" when
// isBase, none when base has no samples. A noisy median is marked †.
func Cell(s Stat, format func(float64) string, base Stat, isBase bool) string {
	if s.N == 0 {
		return "—"
	}
	c := format(s.Med)
	if s.Noisy {
		c += "†"
	}
	if s.N > 1 {
		c += " (" + format(s.Lo) + "–" + format(s.Hi) + ")"
	}
	switch {
	case isBase:
		c += " 1x"
	case base.N > 0 && base.Med > 0:
		c += fmt.Sprintf(" %.2fx", s.Med/base.Med)
	}
	return c
}

// Best returns the server of servers, other than those skip says, whose stat has the least
// median (or the greatest, with most), and that stat; none has an empty name.
func Best(servers []string, skip func(string) bool, stat func(string) Stat, most bool) (string, Stat) {
	best, bestS := "", Stat{}
	for _, s := range servers {
		st := stat(s)
		if skip(s) || st.N == 0 {
			continue
		}
		if bestS.N == 0 || (most && st.Med > bestS.Med) || (!most && st.Med < bestS.Med) {
			best, bestS = s, st
		}
	}
	return best, bestS
}

// Verdict says whether a bar was met.
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// Machine describes the machine for a report: "go1.26.8, amd64, 2 cores (CPU model); Linux
// 6.1.0".
func Machine() string {
	return fmt.Sprintf("%s, %s, %d cores (%s); %s",
		proc.GoVersion(), runtime.GOARCH, runtime.NumCPU(), proc.CPUModel(), proc.Kernel())
}

// BusyCell renders the median load of some windows as "server / client / other", in % of a
// core, or "—" when there are none.
func BusyCell(ls []Load) string {
	if len(ls) == 0 {
		return "—"
	}
	s := Pick(ls, func(l Load) float64 { return l.Server })
	c := Pick(ls, func(l Load) float64 { return l.Client })
	o := Pick(ls, func(l Load) float64 { return l.Other })
	return fmt.Sprintf("%.0f / %.0f / %.0f", 100*s.Med, 100*c.Med, 100*o.Med)
}

// Loads returns the loads of rs.
func Loads[T interface{ Busy() Load }](rs []T) []Load {
	ls := make([]Load, len(rs))
	for i, r := range rs {
		ls[i] = r.Busy()
	}
	return ls
}

// BusyTable writes the table of how busy the cores were during the echo windows: a row per
// server, a column per name in cols, loads(server, i) giving the windows of server under
// column i. A server under 100% was waiting on the client (or the network stack), not on
// itself.
func BusyTable(w io.Writer, servers, cols []string, loads func(server string, col int) []Load) {
	fmt.Fprintf(w, "\nLoad during the echo windows (medians): server core busy / client core busy / other processes, in %% of a core.\n\n")
	fmt.Fprintf(w, "| server |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("--:|", len(cols)))
	for _, s := range servers {
		fmt.Fprintf(w, "| %s |", s)
		for i := range cols {
			fmt.Fprintf(w, " %s |", BusyCell(loads(s, i)))
		}
		fmt.Fprintln(w)
	}
}

// Notes writes the notes under an echo table: what † means (when noisy), the servers that did
// not build, and those with failed runs.
func (c *Config) Notes(w io.Writer, noisy bool, buildFails map[string]string, servers []string, failures map[string]int) {
	if noisy {
		fmt.Fprintf(w, "\n† some of these runs shared the machine with other processes using over %.2f cores "+
			"even after reruns (see the load table below); they inflate CPU per message and lower msgs/s.\n", c.MaxOther)
	}
	for s, why := range buildFails {
		fmt.Fprintf(w, "\n%s did not build and was left out: %s\n", s, why)
	}
	for _, s := range servers {
		if n := failures[s]; n > 0 {
			fmt.Fprintf(w, "\n%s: %d run(s) failed (see the log); its cells have fewer samples.\n", s, n)
		}
	}
}

// WriteReport prints report to stdout and writes it to c.Out.
func (c *Config) WriteReport(report string) error {
	fmt.Print(report)
	if err := os.MkdirAll(filepath.Dir(c.Out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(c.Out, []byte(report), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s", c.Out)
	return nil
}
