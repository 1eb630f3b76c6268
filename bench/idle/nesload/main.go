// Command nesload is the idle benchmark's nes client (bench/idle): it opens -conns WebSocket
// connections to -addr (64 at a time), says hello on each and waits for the reply, prints
// "open N", then answers the server's heartbeat pings and reads whatever else comes, and when
// standard input says "stop" (or reaches EOF) closes them all and prints "closed dropped=N",
// N being the sockets the server closed meanwhile. Connections are closed with SO_LINGER 0.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/bench/internal/proc"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
	conns := flag.Int("conns", 10000, "sockets")
	dialers := flag.Int("dialers", 64, "handshakes in progress at once")
	flag.Parse()
	proc.RaiseNoFile()
	opts := &wsraw.Options{ReadBuffer: 256, Timeout: 20 * time.Second}
	hello := wsraw.AppendFrame(nil, wsraw.Fin|wsraw.OpText, []byte(`{"type":"hello","id":1,"version":"2"}`), [4]byte{1, 2, 3, 4})
	cs, err := wsraw.DialAll(*conns, *dialers, func(int) (*wsraw.Conn, error) {
		c, err := wsraw.Dial(*addr, "/", opts)
		if err != nil {
			return nil, err
		}
		if err := c.Write(hello); err != nil {
			c.Close()
			return nil, err
		}
		m, err := c.ReadMessage(nil, 1<<16)
		if err == nil && !bytes.Contains(m.Payload, []byte(`"hello"`)) {
			err = fmt.Errorf("hello answered with %s", m.Payload)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		log.Fatalf("opening %d sockets: %v", *conns, err)
	}
	var dropped atomic.Int64
	pong := wsraw.AppendFrame(nil, wsraw.Fin|wsraw.OpText, []byte(`{"type":"ping","id":2}`), [4]byte{1, 2, 3, 4})
	for _, c := range cs {
		go func() {
			var buf []byte
			for {
				m, err := c.ReadMessage(buf, 1<<20)
				if err != nil {
					dropped.Add(1) // our own closing comes after the count is taken
					return
				}
				buf = m.Payload
				if bytes.Contains(m.Payload, []byte(`"type":"ping"`)) {
					_ = c.Write(pong) // a broken connection fails the next read, which counts it
				}
			}
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
