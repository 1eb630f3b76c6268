// Package nats is a broker.Broker over core NATS (github.com/nats-io/nats.go), for herald's
// nodes to share topics and messages through a NATS server or cluster:
//
//	b := nats.New("nats://127.0.0.1:4222", nil)
//	// herald.Options{Broker: b} ... the server starts and closes it.
//
// # Subjects
//
// A topic becomes one subject, <Prefix>.t.<token>, where token is the topic with every byte
// outside [A-Za-z0-9] and -_/:=@+~!,; written as %XX (the empty topic is "%"): any string is a
// valid topic, and no topic reaches another's subscribers through NATS wildcards. Send uses
// <Prefix>.n.<node> and <Prefix>.all. Prefix is "herald" unless Options.Prefix says otherwise.
//
// # Guarantees
//
//   - Delivery across nodes is at most once. Messages published while a node's link is down
//     are lost to it; when the link is back (nats.go reconnects and resubscribes by itself),
//     the Handler hears HandleDiscontinuity(nil, err), before any message heard on the new
//     connection.
//   - Messages from one node on one topic arrive in the order it published them (NATS keeps
//     order per publishing connection; there is no order between publishers).
//   - Publishing fails fast: while the link is down, Publish and Send fail at once with an
//     error wrapping broker.ErrUnavailable (the client's reconnect buffer is off), and Err
//     reports the same, for readiness checks.
//   - The reader never blocks on the server: received messages wait in a queue of
//     Options.QueueSize; past it, NATS drops them and the Handler hears
//     HandleDiscontinuity with the topics that lost messages.
//   - There is no history: Publish with a broker.HistoryPolicy fails with
//     broker.ErrHistoryUnsupported. EventSource replay across nodes needs broker/redis.
//     There are no leases either (Broker is not a broker.Leaser).
//   - A message is at most the server's max_payload (1 MiB unless configured); Publish
//     fails with a larger one.
//
// The only nats.go type in the API is the escape hatch Broker.Conn, for monitoring.
package nats
