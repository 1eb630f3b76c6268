package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "world!") })
	srv := herald.NewServer(mux, nil)
	srv.Route("hello", "GET", "/h")
	srv.Subscription("/item/{id}", nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	c, err := client.New("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
	res, err := c.Request(ctx, "hello")
	require.NoError(t, err)
	require.JSONEq(t, `"world!"`, string(res.Payload))
	got := make(chan client.Update, 1)
	_, err = c.Subscribe(ctx, "/item/5", func(u client.Update) { got <- u })
	require.NoError(t, err)
	require.NoError(t, srv.Publish("/item/5", map[string]int{"a": 1}, nil))
	select {
	case u := <-got:
		var m map[string]int
		require.NoError(t, json.Unmarshal(u.Message, &m))
		require.Equal(t, 1, m["a"])
	case <-time.After(3 * time.Second):
		t.Fatal("no update")
	}
	_, err = c.Request(ctx, "/nope")
	require.Equal(t, 404, client.StatusCode(err), "%v", err)
	require.NoError(t, c.Close())
}
