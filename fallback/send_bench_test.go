package fallback

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkSessionSend delivers one publication of 1 KiB to 100 sessions whose clients are
// between two polls, as herald's fan-out does (the same bytes to every socket); each client
// then acknowledges it. One op is one publication: its allocations are those of 100
// deliveries.
func BenchmarkSessionSend(b *testing.B) {
	srv, err := NewServer(&Options{Accept: func(*Session) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	sessions := make([]*Session, 100)
	for i := range sessions {
		sessions[i] = srv.newSession(httptest.NewRequest(http.MethodPost, "/nes/poll", nil))
	}
	msg := []byte(`{"type":"pub","path":"/rooms/general","message":"` + strings.Repeat("m", 1024-48) + `"}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg) * len(sessions)))
	for b.Loop() {
		for _, s := range sessions {
			if err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			s.mu.Lock()
			s.ack(s.nextSeq - 1)
			s.mu.Unlock()
		}
	}
}
