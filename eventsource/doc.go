// Package eventsource is EventSource (Server-Sent Events, the WHATWG HTML standard's
// text/event-stream) for plain net/http: the server side in the style of faye-websocket's
// EventSource, a Stream with a bounded history that lets reconnecting clients resume without
// a gap or a duplicate, and a Go client. EventSource reaches clients that WebSocket cannot:
// through proxies that only pass plain HTTP, over HTTP/1.1 and HTTP/2 alike.
//
// # Server
//
// [Handler] serves a route: each EventSource request gets a stream, handed to Accept.
//
//	news := eventsource.NewStream(nil)
//	mux.Handle("/news", &eventsource.Handler{
//		Accept:  func(es *eventsource.EventSource) { _ = news.Subscribe(es) },
//		Options: &eventsource.Options{Retry: 10 * time.Second, PingInterval: 15 * time.Second},
//	})
//
// [New] does the same in any handler:
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
//		if !es.Hijacked() {
//			<-es.Done() // HTTP/2: keep the ResponseWriter until the stream ends
//		}
//	}
//
// Every event is flushed as it is written. An id or type containing CR, LF or NUL is refused
// with a *FieldError rather than corrupting the stream; data may span lines.
//
// # Memory
//
// Over HTTP/1.x, New takes the connection over from net/http, writes the response head
// itself (a response that ends when the connection closes: Connection: close, no chunked
// coding) and lets the handler return, so net/http frees its serving goroutine and buffers. An
// idle stream then holds its connection, one goroutine parked with a 2 KiB stack that notices
// the client leaving, a keep-alive timer and a few small structures: about 5.5 KiB in all,
// against 22 to 30 KiB for the peers measured beside it at 10,000 streams (cd bench && go run
// ./sse; README.md has the figures). Over HTTP/2, or behind a
// middleware that hides the connection (a ResponseWriter without Unwrap or Hijack), the
// stream is written through the ResponseWriter and the handler waits for Done.
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
// # Several nodes
//
// [JoinStream] makes a Stream that the nodes of a cluster share through a broker.Node with
// history (broker/redis; broker/nats keeps none and is refused): a Publish on any node reaches
// the subscribers of every node, event ids are positions in the broker's history
// ("OFFSET:EPOCH"), and a client that reconnects to any node with its Last-Event-ID gets
// exactly the events it missed, or the gap event when the broker's history no longer has them
// (trimmed, or lost: a new epoch), never a silent hole.
//
// # Slow clients
//
// Nothing a client does can make a sender wait or make another client wait. Send, Publish and
// pings never wait for a client. On a connection New took over, whoever sends, publishes or
// pings writes what is waiting at once, as much as the socket takes without waiting; a Stream
// writes to its subscribers from up to GOMAXPROCS goroutines that live for one Publish, not
// one goroutine per subscriber. Only a client whose socket is full gets a writer goroutine of
// its own, which waits for it within Options.WriteTimeout. On HTTP/2, writer goroutines exist
// while there is something to write (reused across a Stream's subscribers, and ended 100 to
// 200 ms after their last write), each batch bounded by Options.WriteTimeout.
//
// The overflow policy is to disconnect: a client whose queue would pass Options.QueueLimit, or
// whose next event has left the Stream's history, is disconnected with ErrSlowClient, and
// reconnects and resumes from its Last-Event-ID. Dropping events would leave a gap the client
// cannot see, and an unbounded queue would let one client take the server's memory. A stream
// subscribed to a Stream holds no copy of the events it has yet to receive: they are read from
// the shared history.
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
// set http.Server.WriteTimeout for event streams on HTTP/2: New clears the write deadline
// after each write and applies its own (on HTTP/1.x it clears net/http's deadlines when it
// takes the connection over). A client that should stop reconnecting must be answered with
// 204 No Content instead of a stream. Browsers allow six HTTP/1.1 connections per host,
// shared by all tabs: serve EventSource over HTTP/2 where many tabs may be open.
//
// http.Server's Shutdown and Close do not see connections taken over by New: give New a
// Registry (Options.Registry) and register its Shutdown with http.Server.RegisterOnShutdown,
// or end the streams yourself when the server stops (Stream.Close ends every subscriber). A stream's Request has no context on such a connection,
// and a middleware that records the response (status, bytes) sees none.
package eventsource
