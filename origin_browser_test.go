package herald

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

// TestBrowserOrigins: a page on one origin (a development server on another port) opens
// nes WebSockets in Chromium. A server without Origins refuses it: the page sees only an
// error event and 1006, and the server's Logger is where the refusal shows, with the origin
// and the reason. A server whose Origins has "http://127.0.0.1:*" lets it in.
func TestBrowserOrigins(t *testing.T) {
	chromium := testpeers.Chromium(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html><title>page</title>")
	}))
	defer page.Close()

	logs := &syncBuffer{}
	strict := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	open := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Origins: []string{"http://127.0.0.1:*"}})
	strictURL, openURL := newTestServer(t, strict), newTestServer(t, open)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := testpeers.Run(ctx, t, "browser-origins.js", chromium, page.URL, strictURL, openURL)
	type result struct {
		URL        string
		Opened     bool
		Reply      string
		Code       int
		ErrorEvent bool
		Done       bool
	}
	var results []result
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r result
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		results = append(results, r)
	}
	require.Len(t, results, 3, out)
	require.True(t, results[2].Done, out)

	refused, allowed := results[0], results[1]
	assert.False(t, refused.Opened, "a foreign origin is refused")
	assert.True(t, refused.ErrorEvent)
	assert.Equal(t, 1006, refused.Code, "all a page learns of a refused handshake")
	assert.Contains(t, logs.String(), `msg="herald: origin refused" transport=websocket origin=`+page.URL)
	assert.Contains(t, logs.String(), "reason=\"neither the server's host nor listed in Options.Origins\"")

	assert.True(t, allowed.Opened, "Origins lets the page in")
	assert.Equal(t, "hello", allowed.Reply)
}
