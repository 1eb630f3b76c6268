package websocket_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/gobwas/ws"

	"github.com/herald-go/herald/websocket"
)

// BenchmarkEcho measures a binary echo through a herald server over loopback TCP, one message
// in flight, with a minimal raw client (pre-masked frames), for profiling the server's path.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 1024, 16384} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			for _, api := range []string{"ReadAppend", "Read", "Reader"} {
				b.Run(api, func(b *testing.B) { benchEcho(b, size, api) })
			}
		})
	}
}

func benchEcho(b *testing.B, size int, api string) {
	url := serveBench(b, api)
	conn, _, _, err := ws.Dial(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var frame bytes.Buffer
	_ = ws.WriteFrame(&frame, ws.MaskFrame(ws.NewBinaryFrame(bytes.Repeat([]byte{'x'}, size))))
	out := frame.Bytes()
	hdr := ws.HeaderSize(ws.Header{Length: int64(size)})
	in := make([]byte, hdr+size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, in); err != nil {
			b.Fatal(err)
		}
	}
}

func serveBench(b *testing.B, api string) string {
	b.Helper()
	return serveTB(b, &websocket.Options{PingInterval: -1}, func(c *websocket.Conn) {
		ctx := context.Background()
		var buf bytes.Buffer
		var scratch []byte
		for {
			var typ websocket.MessageType
			var data []byte
			var err error
			switch api {
			case "ReadAppend":
				typ, data, err = c.ReadAppend(ctx, scratch[:0])
				scratch = data
			case "Read":
				typ, data, err = c.Read(ctx)
			default:
				var rd io.Reader
				typ, rd, err = c.Reader(ctx)
				if err == nil {
					buf.Reset()
					_, err = buf.ReadFrom(rd)
					data = buf.Bytes()
				}
			}
			if err != nil {
				return
			}
			if c.Write(ctx, typ, data) != nil {
				return
			}
		}
	})
}
