package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-go/herald/eventsource"
)

// New works in any net/http handler. Here, a stream of one notification.
func ExampleNew() {
	http.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		if !eventsource.IsEventSource(r) {
			http.Error(w, "this is an event stream", http.StatusNotAcceptable)
			return
		}
		es, err := eventsource.New(w, r, &eventsource.Options{
			Retry:        10 * time.Second,
			PingInterval: 15 * time.Second,
			Header:       http.Header{"Access-Control-Allow-Origin": {"*"}},
		})
		if err != nil {
			return
		}
		log.Printf("stream %s resuming after %q", es.URL(), es.LastEventID())
		_ = es.Send("Breaking News!", eventsource.Event{Type: "notification", ID: "99"})
		if !es.Hijacked() { // HTTP/2: the ResponseWriter must be kept until the end
			<-es.Done()
		}
	})
}

// Handler serves a route of event streams; with a Stream, its handler returns at once and an
// idle stream costs a few KiB.
func ExampleHandler() {
	news := eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 1000, HistoryAge: time.Hour})
	http.Handle("/news", &eventsource.Handler{
		Accept:  func(es *eventsource.EventSource) { _ = news.Subscribe(es) },
		Options: &eventsource.Options{Retry: 10 * time.Second},
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, "news.html")
		}),
	})
	_, _ = news.Publish(`{"headline":"..."}`, eventsource.Event{Type: "news"})
}

// A Stream replays what a reconnecting client missed.
func ExampleStream() {
	news := eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 3})
	srv := httptest.NewServer(&eventsource.Handler{
		Accept: func(es *eventsource.EventSource) { _ = news.Subscribe(es) },
	})
	defer srv.Close()

	for _, headline := range []string{"one", "two", "three", "four", "five"} {
		_, _ = news.Publish(headline, eventsource.Event{}) // ids "1" to "5"
	}
	show := func(lastEventID string, n int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Last-Event-ID", lastEventID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		dec := eventsource.NewDecoder(resp.Body, 0, lastEventID)
		for range n {
			m, _ := dec.Next()
			fmt.Printf("%s %s: %s\n", m.Type, m.ID, m.Data)
		}
	}
	show("3", 2) // the two missed events
	show("1", 4) // "2" has left the history: a gap event first
	// Output:
	// message 4: four
	// message 5: five
	// gap 2: 1
	// message 3: three
	// message 4: four
	// message 5: five
}

// A Client reconnects and resumes by itself; Run returns when ctx ends.
func ExampleClient() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		es, err := eventsource.New(w, r, &eventsource.Options{Retry: 10 * time.Millisecond})
		if err != nil {
			return
		}
		// Each connection sends one event and ends: the client comes back for the next.
		next := "1"
		if r.Header.Get("Last-Event-ID") == "1" {
			next = "2"
		}
		_ = es.Send("event "+next, eventsource.Event{ID: next})
		_ = es.Close()
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := eventsource.NewClient(srv.URL, nil)
	err := c.Run(ctx, func(m eventsource.Message) {
		fmt.Println(m.ID, m.Data)
		if m.ID == "2" {
			cancel()
		}
	})
	fmt.Println(errors.Is(err, context.Canceled), c.Retry())
	// Output:
	// 1 event 1
	// 2 event 2
	// true 10ms
}

// The Decoder reads any event stream.
func ExampleDecoder() {
	stream := "retry: 5000\n: a comment\nevent: add\nid: 7\ndata: first line\ndata: second line\n\ndata: plain\n\n"
	dec := eventsource.NewDecoder(strings.NewReader(stream), 0, "")
	for {
		m, err := dec.Next()
		if err != nil {
			break
		}
		fmt.Printf("%s %s %q\n", m.Type, m.ID, m.Data)
	}
	retry, _ := dec.Retry()
	fmt.Println(retry)
	// Output:
	// add 7 "first line\nsecond line"
	// message 7 "plain"
	// 5s
}
