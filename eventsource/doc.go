// Package eventsource is EventSource (Server-Sent Events, the WHATWG HTML standard's
// text/event-stream) for plain net/http: the server side in the style of faye-websocket's
// EventSource, a Stream with a bounded history that lets reconnecting clients resume without
// a gap or a duplicate, and a Go client. EventSource reaches clients that WebSocket cannot:
// through proxies that only pass plain HTTP, over HTTP/1.1 and HTTP/2 alike.
//
// # Server
//
//	if eventsource.IsEventSource(r) {
//		es, err := eventsource.New(w, r, &eventsource.Options{
//			Retry:        10 * time.Second,
//			PingInterval: 15 * time.Second,
//			Header:       http.Header{"Access-Control-Allow-Origin": {"*"}},
//		})
//		if err != nil {
//			return
//		}
//		es.URL()
//		es.LastEventID() // Last-Event-ID, or the lastEventId query parameter
//		es.Send("Breaking News!", eventsource.Event{Type: "notification", ID: "99"})
//		<-es.Done() // the client went away, or Close
//	}
//
// Every event is flushed as it is written. An id or type containing CR, LF or NUL is refused
// with a *FieldError rather than corrupting the stream; data may span lines.
//
// # Replay
//
// A [Stream] is a topic many EventSources subscribe to. It keeps a history bounded by count,
// bytes and age, and [Stream.Subscribe] sends a reconnecting client exactly the events after
// its Last-Event-ID. When the history no longer reaches back that far, the client first gets
// an event of type "gap" (see Stream): never a silent hole.
//
//	news := eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 1000, HistoryAge: time.Hour})
//	...
//	es, _ := eventsource.New(w, r, nil)
//	news.Subscribe(es)
//	<-es.Done()
//	...
//	news.Publish(`{"headline":"..."}`, eventsource.Event{Type: "news"}) // id assigned: "1", "2", ...
//
// # Slow clients
//
// Nothing a client does can make a sender wait or make another client wait. Send and Publish
// only queue; writer goroutines that exist while there is something to write (reused across
// a Stream's subscribers, and ended 100 to 200 ms after their last write) write the streams, each
// batch bounded by Options.WriteTimeout, and a writer stuck on one client is never the one
// another client waits for. The overflow policy is to disconnect:
// a client whose queue would pass Options.QueueLimit, or whose next event has left the
// Stream's history, is disconnected with ErrSlowClient, and reconnects and resumes from its
// Last-Event-ID. Dropping events would leave a gap the client cannot see, and an unbounded
// queue would let one client take the server's memory. A stream subscribed to a Stream holds
// no copy of the events it has yet to receive: they are read from the shared history.
//
// # Client
//
// [Client] reads a stream with a [Decoder] that follows the standard's parsing rules, calls a
// function with each event, and reconnects when the stream ends, cleanly or not, after the
// server's retry time, sending Last-Event-ID. Events may be as large as
// ClientOptions.MaxEventSize (1 MiB by default); proxies are chosen by ClientOptions.Proxy
// (the environment by default), with CONNECT for https.
//
// This client replaces github.com/r3labs/sse/v2, which was the plan; see README.md in this
// directory for why. r3labs/sse's client remains one of the real peers the tests run against.
//
// # Deployment
//
// Behind nginx, X-Accel-Buffering: no (sent by New) turns buffering off for the stream. Do not
// set http.Server.WriteTimeout for event streams: New clears the write deadline after each
// write and applies its own. A client that should stop reconnecting must be answered with 204
// No Content instead of a stream. Browsers allow six HTTP/1.1 connections per host, shared
// by all tabs: serve EventSource over HTTP/2 where many tabs may be open.
package eventsource
