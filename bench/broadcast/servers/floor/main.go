// Command floor is not a WebSocket library: it is the least a Go server on net/http can do
// to give the broadcast load client the same bytes, a bound to read the libraries' numbers
// against (the least time to the last connection, the most deliveries per second). It answers the handshake with a fixed response, reads frames with no
// checks beyond their header, and writes each message it reads to every connection from
// the reading goroutine: framed once, one write(2) per connection through net.Conn, no
// queue, no deadline, no slow-consumer handling, no close handshake. Everything a real
// server must do beyond that is left out, so no library built on write(2) should broadcast
// faster than this one on the same machine, beyond run-to-run noise.
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/herald-go/herald/bench/internal/serve"
)

// conns is the connections to broadcast to, replaced (never changed in place) under mu.
var (
	mu    sync.Mutex
	conns atomic.Pointer[[]net.Conn]
)

func main() {
	conns.Store(new([]net.Conn))
	serve.Main(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Sec-WebSocket-Key")
		nc, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		if _, err := io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
			base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n"); err != nil {
			return
		}
		add(nc)
		defer remove(nc)
		read(rw.Reader)
	}))
}

func add(nc net.Conn) {
	mu.Lock()
	defer mu.Unlock()
	cs := append(slices.Clip(*conns.Load()), nc)
	conns.Store(&cs)
}

func remove(nc net.Conn) {
	mu.Lock()
	defer mu.Unlock()
	cs := slices.DeleteFunc(slices.Clone(*conns.Load()), func(c net.Conn) bool { return c == nc })
	conns.Store(&cs)
}

// read broadcasts every data frame it reads until the connection fails or sends a close.
func read(br *bufio.Reader) {
	var hdr [14]byte
	var payload, frame []byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		op, n := hdr[0]&0x0f, uint64(hdr[1]&0x7f)
		ext := 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		if _, err := io.ReadFull(br, hdr[2:2+ext+4]); err != nil {
			return
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(hdr[2:]))
		case 8:
			n = binary.BigEndian.Uint64(hdr[2:])
		}
		if n > 1<<20 || op == 8 {
			return
		}
		mask := hdr[2+ext : 2+ext+4]
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if op != 1 && op != 2 {
			continue
		}
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
		frame = append(frame[:0], 0x80|op)
		switch {
		case n < 126:
			frame = append(frame, byte(n))
		case n < 1<<16:
			frame = binary.BigEndian.AppendUint16(append(frame, 126), uint16(n))
		default:
			frame = binary.BigEndian.AppendUint64(append(frame, 127), n)
		}
		frame = append(frame, payload...)
		for _, c := range *conns.Load() {
			_, _ = c.Write(frame)
		}
	}
}
