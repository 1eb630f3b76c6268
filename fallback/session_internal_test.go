package fallback

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStaleGraceTimer lets a grace period's timer fire while the session is locked (the
// client coming back at that very moment), then starts a new grace period (the client gone
// again): the old timer must not end the session, only the new one may.
func TestStaleGraceTimer(t *testing.T) {
	srv, err := NewServer(&Options{Accept: func(*Session) {}, Grace: time.Millisecond, RetryMin: time.Microsecond, RetryMax: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s := srv.newSession(httptest.NewRequest(http.MethodPost, "/nes/poll", nil))
	s.mu.Lock()
	s.startGrace()
	time.Sleep(20 * time.Millisecond) // the timer fires; its function waits for s.mu
	s.stopGrace()                     // the client came back: too late to stop it
	s.srv.opts.Grace = time.Minute
	s.startGrace() // and left again
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-s.Done():
		t.Fatal("the session ended at a grace period that had been stopped")
	default:
	}
}
