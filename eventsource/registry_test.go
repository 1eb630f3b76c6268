package eventsource_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
)

// TestRegistryShutdown checks, over every protocol, that a Registry sees the streams New
// starts and forgets those that end, and that Shutdown ends the open ones (after what was
// queued) and refuses new ones with 503.
func TestRegistryShutdown(t *testing.T) {
	t.Parallel()
	for _, proto := range serverProtos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			reg := &eventsource.Registry{}
			srv := serveHandler(t, proto, &eventsource.Handler{
				Accept:  func(es *eventsource.EventSource) { _ = es.Send("hello", eventsource.Event{}) },
				Options: &eventsource.Options{Registry: reg},
			})
			a, b, gone := srv.open(t, "/", nil), srv.open(t, "/", nil), srv.open(t, "/", nil)
			for _, st := range []*stream{a, b, gone} {
				assert.Equal(t, "hello", st.next(t).Data)
			}
			assert.Equal(t, 3, reg.Len())

			gone.Close()
			require.Eventually(t, func() bool { return reg.Len() == 2 }, 10*time.Second, 10*time.Millisecond,
				"a stream whose client left is forgotten")

			reg.Shutdown()
			assert.Zero(t, reg.Len())
			for _, st := range []*stream{a, b} {
				_, err := st.Dec.Next()
				assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "the stream ends: %v", err)
			}

			req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			require.NoError(t, err)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := srv.Client.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Zero(t, reg.Len())
		})
	}
}

// TestRegistryShutdownWhileStarting runs Shutdown while New starts a stream: whichever comes
// first, once both have returned the stream has ended (Shutdown closed it, or New did and
// reported ErrShuttingDown) and nothing is tracked; no stream escapes Shutdown, and nothing
// touches a half-built stream.
func TestRegistryShutdownWhileStarting(t *testing.T) {
	t.Parallel()
	for range 500 {
		reg := &eventsource.Registry{}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.ProtoMajor, r.ProtoMinor = 2, 0 // the ResponseWriter path: a recorder cannot be taken over
		shut := make(chan struct{})
		go func() { defer close(shut); reg.Shutdown() }()
		es, err := eventsource.New(httptest.NewRecorder(), r, &eventsource.Options{Registry: reg, PingInterval: -1})
		<-shut
		require.Zero(t, reg.Len(), "nothing is tracked after Shutdown")
		if err != nil {
			require.ErrorIs(t, err, eventsource.ErrShuttingDown)
			continue
		}
		select {
		case <-es.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a stream escaped Shutdown")
		}
	}
}
