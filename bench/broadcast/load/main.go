// Command load is the broadcast benchmark's load client. It opens -conns WebSocket
// connections (bench/internal/wsraw, -dialers handshakes at a time), prints "open N", then
// reads them all from one loop on epoll, on raw non-blocking descriptors
// (bench/internal/fanload; a goroutine per connection would cost the client more per message
// than the server's write costs the server). The first connection, the publisher, sends one binary message of -size bytes at a
// time: its first 8 bytes are a sequence number. The server broadcasts it to every
// connection, the publisher included, and the next message goes only once all -conns have
// it. After -warmup unmeasured broadcasts it prints
//
//	start
//	stop pubs=N secs=S cpu=C
//	lat T1 T2 ...
//
// around -pubs measured ones: cpu is the client's own user+system seconds, and each Ti is a
// broadcast's time in µs from just before its message was written to the moment the last
// connection had read it whole. Every message is checked: its type, length, sequence number
// (in order on every connection) and fill bytes. Pings are answered. Connections are closed
// with SO_LINGER 0.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/herald-go/herald/bench/internal/fanload"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

func main() {
	var (
		addr    = flag.String("addr", "127.0.0.1:8080", "server address (host:port on loopback)")
		path    = flag.String("path", "/", "request path")
		conns   = flag.Int("conns", 10000, "connections, the publisher included")
		size    = flag.Int("size", 256, "message size in bytes (at least 8)")
		pubs    = flag.Int("pubs", 50, "measured broadcasts")
		warmup  = flag.Int("warmup", 5, "unmeasured broadcasts first")
		dialers = flag.Int("dialers", 64, "handshakes in progress at once")
		timeout = flag.Duration("timeout", 30*time.Second, "the longest a broadcast may take to reach everyone")
	)
	flag.Parse()
	wsraw.Main("broadcast", map[string]func() error{
		"broadcast": func() error { return run(*addr, *path, *conns, *size, *pubs, *warmup, *dialers, *timeout) },
	})
}

// fill is the byte every message carries after its sequence number.
const fill = 'x'

func run(addr, path string, conns, size, pubs, warmup, dialers int, timeout time.Duration) error {
	if conns < 1 || size < 8 || pubs < 1 || warmup < 0 {
		return errors.New("need -conns and -pubs above zero, -size of 8 or more")
	}
	cs, err := wsraw.DialAll(conns, dialers, func(int) (*wsraw.Conn, error) {
		return wsraw.Dial(addr, path, &wsraw.Options{Timeout: 20 * time.Second})
	})
	if err != nil {
		return fmt.Errorf("opening %d connections: %w", conns, err)
	}
	var raws []*fanload.Conn
	defer func() {
		for _, r := range raws {
			r.Close()
		}
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	p, err := fanload.NewPoller(512)
	if err != nil {
		return err
	}
	defer p.Close()
	for i, c := range cs {
		r, err := fanload.TakeOver(c, fanload.Options{Op: wsraw.OpBinary, Max: size + 14, Drain: true})
		if err != nil {
			return err
		}
		cs[i] = nil
		raws = append(raws, r)
		if _, err := p.Add(r); err != nil {
			return err
		}
	}
	cs = nil
	fmt.Printf("open %d\n", conns)

	pub := raws[0]
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = fill
	}
	frame := wsraw.AppendFrame(nil, wsraw.Fin|wsraw.OpBinary, payload, pub.Mask)
	off := len(frame) - size
	var (
		seq    uint64
		got    int
		lastAt time.Time
		last   = make([]uint64, conns) // each connection's last sequence number read
		lat    []time.Duration
		t0     time.Time
		cpu0   float64
	)
	handle := func(i int, p []byte) error {
		if len(p) != size {
			return fmt.Errorf("a message of %d bytes, sent %d", len(p), size)
		}
		if s := binary.LittleEndian.Uint64(p); s != seq || s != last[i]+1 {
			return fmt.Errorf("message %d arrived while %d was broadcast (the connection's last was %d)", s, seq, last[i])
		}
		for _, b := range p[8:] {
			if b != fill {
				return errors.New("a message's bytes differ from what was sent")
			}
		}
		last[i] = seq
		if got++; got == conns {
			lastAt = time.Now()
		}
		return nil
	}
	done := func() bool { return got >= conns }
	for i := 1; i <= warmup+pubs; i++ {
		if i == warmup+1 {
			t0, cpu0 = time.Now(), wsraw.CPUSeconds()
			fmt.Println("start")
		}
		seq, got = uint64(i), 0
		var sb [8]byte
		binary.LittleEndian.PutUint64(sb[:], seq)
		for j, b := range sb {
			frame[off+j] = b ^ pub.Mask[j&3]
		}
		sent := time.Now()
		if err := pub.Write(frame); err != nil {
			return fmt.Errorf("broadcast %d: %w", seq, err)
		}
		ok, err := p.Until(sent.Add(timeout), done, handle)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("broadcast %d: %d of %d connections had it after %v", seq, got, conns, timeout)
		}
		if i > warmup {
			lat = append(lat, lastAt.Sub(sent))
		}
	}
	t1, cpu1 := time.Now(), wsraw.CPUSeconds()
	fmt.Printf("stop pubs=%d secs=%g cpu=%g\n", pubs, t1.Sub(t0).Seconds(), cpu1-cpu0)
	var sb strings.Builder
	sb.WriteString("lat")
	for _, d := range lat {
		fmt.Fprintf(&sb, " %d", d.Microseconds())
	}
	fmt.Println(sb.String())
	return nil
}
