package herald

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// countTransport is a Transport for benchmarks: it feeds prepared messages and counts replies.
type countTransport struct {
	in      chan []byte
	replies chan struct{}
	done    chan struct{}
}

func (c *countTransport) Receive(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	case <-c.done:
		return nil, errors.New("closed")
	}
}

func (c *countTransport) Send(ctx context.Context, msg []byte) error {
	select {
	case c.replies <- struct{}{}:
	case <-c.done:
	}
	return nil
}

func (c *countTransport) Close(error) error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return nil
}

func (c *countTransport) RemoteAddr() string { return "bench" }

func startBenchSocket(b *testing.B, srv *Server) *countTransport {
	ct := &countTransport{in: make(chan []byte, 1), replies: make(chan struct{}, 1), done: make(chan struct{})}
	r, _ := http.NewRequest("GET", "/", nil)
	go srv.serve(ct, r)
	ct.in <- []byte(`{"type":"hello","id":1,"version":"2"}`)
	<-ct.replies
	return ct
}

// BenchmarkRequest measures one nes request served by an application handler, without the
// network: decode, dispatch, the in-process http.Request, the reply's encoding.
func BenchmarkRequest(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "world!") })
	srv := NewServer(mux, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	ct := startBenchSocket(b, srv)
	msg := []byte(`{"type":"request","id":2,"method":"GET","path":"/h"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ct.in <- msg
		<-ct.replies
	}
}

// BenchmarkPublish1000 measures a publication to 1,000 subscribers, until every subscriber's
// transport has been handed the message.
func BenchmarkPublish1000(b *testing.B) {
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	srv.Subscription("/item/{id}", nil)
	var subs []*countTransport
	for i := range 1000 {
		ct := startBenchSocket(b, srv)
		ct.in <- []byte(`{"type":"sub","id":` + strconv.Itoa(i+2) + `,"path":"/item/5"}`)
		<-ct.replies
		subs = append(subs, ct)
	}
	msg := map[string]any{"id": 5, "status": "complete"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := srv.Publish("/item/5", msg, nil); err != nil {
			b.Fatal(err)
		}
		for _, ct := range subs {
			<-ct.replies
		}
	}
}
