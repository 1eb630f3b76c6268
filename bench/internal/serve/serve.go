// Package serve is the part every benchmark server shares: the -addr flag,
// the listener, the "listening ADDR" line the orchestrator waits for, a
// plain net/http server, and the echo loop of the libraries whose API reads a
// message through an io.Reader. Keeping it in one place keeps the servers equal in
// everything but the WebSocket library.
package serve

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/herald-go/herald/bench/internal/proc"
)

var (
	addr        = flag.String("addr", "127.0.0.1:0", "address to listen on")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile here between two SIGUSR2s (for looking into a result; the benchmark never sets it)")
	heapProfile = flag.String("heapprofile", "", "write a heap profile here on every SIGUSR1, after the memstats line (for looking into a result; the benchmark never sets it)")
)

// Main parses the flags (a server may define its own and parse them first),
// listens on -addr, prints "listening ADDR" to stdout and serves h with
// net/http until the process is killed.
func Main(h http.Handler) {
	flag.Parse()
	proc.RaiseNoFile()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go memStatsOnSignal()
	if *cpuProfile != "" {
		go profileOnSignal(*cpuProfile)
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	srv := &http.Server{Handler: h}
	log.Fatal(srv.Serve(ln))
}

// EchoReader echoes messages until next or write fails: next returns the next
// message's type and a reader of it (coder/websocket's Conn.Reader, gorilla's
// Conn.NextReader and herald's Conn.Reader all do), and write sends a message
// of that type back. Each message is read into one reused buffer, so reading
// allocates only until the buffer has grown to the message size.
func EchoReader[T any](next func() (T, io.Reader, error), write func(T, []byte) error) {
	var buf bytes.Buffer
	for {
		typ, rd, err := next()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return
		}
		if err := write(typ, buf.Bytes()); err != nil {
			return
		}
	}
}

// memStatsOnSignal prints where the Go runtime's memory is, in KiB, to
// stderr on every SIGUSR1: "memstats goroutines=N heap-inuse=K heap-alloc=K
// stack-inuse=K sys=K", and writes a heap profile when -heapprofile is set.
// It helps explain an idle-RSS figure; the benchmark itself never sends the
// signal.
func memStatsOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	for range c {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "memstats goroutines=%d heap-inuse=%d heap-alloc=%d stack-inuse=%d sys=%d\n",
			runtime.NumGoroutine(), m.HeapInuse>>10, m.HeapAlloc>>10, m.StackInuse>>10, m.Sys>>10)
		if *heapProfile != "" {
			writeHeapProfile(*heapProfile)
		}
	}
}

// profileOnSignal starts a CPU profile into file on SIGUSR2 and stops it on
// the next one.
func profileOnSignal(file string) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	for range c {
		f, err := os.Create(file)
		if err != nil {
			log.Print(err)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Print(err)
			f.Close()
			return
		}
		<-c
		pprof.StopCPUProfile()
		f.Close()
		fmt.Fprintf(os.Stderr, "wrote %s\n", file)
	}
}

// writeHeapProfile writes the live heap, as of a fresh collection, to file.
func writeHeapProfile(file string) {
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		log.Print(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		log.Print(err)
	}
}
