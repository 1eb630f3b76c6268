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
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
	conns := flag.Int("conns", 10000, "streams")
	dialers := flag.Int("dialers", 64, "requests in progress at once")
	flag.Parse()
	proc.RaiseNoFile()
	cs := make([]*net.TCPConn, *conns)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		dropped atomic.Int64
		mu      sync.Mutex
		first   error
	)
	for range *dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cs) {
					return
				}
				c, br, err := open(*addr)
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				cs[i] = c
				go func() {
					if _, err := io.Copy(io.Discard, br); err == nil || !isClosed(err) {
						dropped.Add(1)
					}
				}()
			}
		})
	}
	wg.Wait()
	if first != nil {
		log.Fatalf("opening %d streams: %v", *conns, first)
	}
	fmt.Printf("open %d\n", len(cs))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() && sc.Text() != "stop" {
	}
	d := dropped.Load()
	for _, c := range cs {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
	fmt.Printf("closed dropped=%d\n", d)
}

// open requests an event stream and reads the response head.
func open(addr string) (*net.TCPConn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, 20*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, 256)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, nil, fmt.Errorf("status %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	return c.(*net.TCPConn), br, nil
}

// isClosed reports whether err is what reading a connection we closed ourselves gives.
func isClosed(err error) bool {
	ne, ok := err.(*net.OpError)
	return ok && ne.Err != nil && ne.Err.Error() == "use of closed network connection"
}
