// Command sseload is the idle benchmark's EventSource client (bench/idle): it opens -conns
// event streams to -addr (64 requests at a time), reads each response head, prints
// "open N", keeps reading (and discarding) the streams, and when standard input says "stop"
// (or reaches EOF) closes them all and prints "closed dropped=N", N being the streams the
// server ended meanwhile. Connections are closed with SO_LINGER 0 (no TIME_WAIT left behind).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
	conns := flag.Int("conns", 10000, "streams")
	dialers := flag.Int("dialers", 64, "requests in progress at once")
	flag.Parse()
	proc.RaiseNoFile()
	cs, err := wsraw.DialAll(*conns, *dialers, func(int) (stream, error) { return open(*addr) })
	if err != nil {
		log.Fatalf("opening %d streams: %v", *conns, err)
	}
	var dropped atomic.Int64
	for _, c := range cs {
		go func() {
			// The server ended the stream, or broke it; the ends our own closing causes come
			// after the count is taken.
			_, _ = io.Copy(io.Discard, c.br)
			dropped.Add(1)
		}()
	}
	fmt.Printf("open %d\n", len(cs))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() && sc.Text() != "stop" {
	}
	d := dropped.Load()
	for _, c := range cs {
		c.Close()
	}
	fmt.Printf("closed dropped=%d\n", d)
}

// stream is an open event stream: the connection and its reader, past the response head.
type stream struct {
	*net.TCPConn
	br *bufio.Reader
}

// Close drops the connection at once (SO_LINGER 0: no TIME_WAIT).
func (s stream) Close() {
	_ = s.SetLinger(0)
	_ = s.TCPConn.Close()
}

// open requests an event stream from addr and reads the response head, which must be 200.
func open(addr string) (stream, error) {
	c, err := net.DialTimeout("tcp", addr, 20*time.Second)
	if err != nil {
		return stream{}, err
	}
	s := stream{TCPConn: c.(*net.TCPConn), br: bufio.NewReaderSize(c, 256)}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		s.Close()
		return stream{}, err
	}
	resp, err := http.ReadResponse(s.br, nil)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err != nil {
		s.Close()
		return stream{}, err
	}
	_ = c.SetDeadline(time.Time{})
	return s, nil
}
