package harness

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Heading writes a report's title and its first line: the time (UTC), the command run (cmd,
// such as "go run ./broadcast", and this process's arguments) and how long the measured runs
// took.
func Heading(w io.Writer, title, cmd string, took time.Duration) {
	fmt.Fprintf(w, "# %s\n\n", title)
	fmt.Fprintf(w, "%s, `%s` (%s measured, plus builds).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(append([]string{cmd}, os.Args[1:]...), " "), took.Round(time.Second))
}

// SizeName names a message size: "4 KiB", "1 MiB", "300 B".
func SizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// SizesBusyTable is [BusyTable] with a column per message size, loads(server, size) giving
// the windows of server at that size.
func SizesBusyTable(w io.Writer, servers []string, sizes []int, loads func(server string, size int) []Load) {
	cols := make([]string, len(sizes))
	for i, sz := range sizes {
		cols[i] = SizeName(sz)
	}
	BusyTable(w, servers, cols, func(s string, i int) []Load { return loads(s, sizes[i]) })
}
