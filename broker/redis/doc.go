// Package redis is a [broker.Broker] on Redis, through github.com/redis/rueidis: a single
// server, a master followed through Sentinel, or a Redis Cluster. Besides carrying messages
// between herald's nodes it keeps per-topic history in Redis Streams ([broker.HistoryReader])
// and cluster-wide leases in sorted sets ([broker.Leaser]).
//
//	b, err := redis.New(redis.Options{Addrs: []string{"127.0.0.1:6379"}})
//
// New only checks the options; [Broker.Start] connects. Pass the Broker to herald (or
// fallback) and the server starts and closes it.
//
// # How it uses Redis
//
// Topics are Redis channels named Prefix + "t:" + topic (Prefix defaults to "herald:"): each
// node holds one connection subscribed (SUBSCRIBE) to the topics it needs, to its own channel
// (Prefix + "n:" + node) and to the broadcast channel (Prefix + "a:"), which carry
// [Broker.Send]. With [Options.Cluster], names carry a hash tag, topics are spread over
// [Options.Partitions] slots, each heard on its own connection with SSUBSCRIBE and published
// with SPUBLISH, so that a message goes to one shard rather than to the whole cluster.
//
// A publication with a [broker.HistoryPolicy] is one Lua script: it reads the topic's epoch
// from a hash (starting a new random epoch when the hash is missing, or was written by a
// master that this server replaced in a failover), increments the offset,
// appends the message to a stream with the offset as its ID, trimmed to Size entries (MAXLEN
// =), sets the TTL on both keys, and publishes the message with its position. Publication and
// history cannot disagree, and [Broker.History] (another script, on XRANGE) tells a reader at a
// position it can no longer resume from: [broker.ErrEpochChanged] when the history was lost
// and restarted, [broker.ErrTrimmed] when the messages after it were trimmed.
//
// A lease set is a sorted set of holders scored by their expiry on the Redis server's clock;
// [Broker.Acquire] is a script that removes the expired leases, counts, and adds the holder if
// there is room. The leases of a node that dies expire after their ttl.
//
// # Guarantees
//
// Delivery across nodes is at most once. Redis keeps the order of the messages on one topic,
// as it executed their PUBLISH; one publisher's messages arrive in the order it published.
//
// A Handler is called from one goroutine per partition (one without Cluster), which never
// holds up Redis's connection: what is heard is queued, up to [Options.QueueSize] messages; a
// Handler that falls further behind loses messages, counted by [Broker.Dropped], and hears a
// discontinuity on their topics.
//
// When a subscribed connection is lost (Redis stopped, the network cut, a failover, or Redis
// closing a connection that fell behind its client-output-buffer-limit), [Broker.Err] wraps
// [broker.ErrUnavailable] and Publish, Send, Subscribe and History fail at once with it rather
// than waiting or buffering. A connection that stops answering counts as lost within about
// twice [Options.Timeout]. The broker reconnects every [Options.ReconnectDelay], subscribes
// again to every topic, makes its command connections that broke while idle reconnect too
// (so that publications do not fail on them afterwards), and then calls HandleDiscontinuity
// with the error, before any message heard on the new connection: messages published
// meanwhile are lost to this node.
//
// With Sentinel, each subscribed connection is also checked every second against the master
// that commands reach: after a failover that leaves the old master running (SENTINEL
// FAILOVER, a network partition), nothing closes the connection to it, and the Sentinel
// demotes it only some ten seconds later.
//
// # What Redis itself can lose
//
//   - A Redis restart without persistence (the default of this package's tests: --save ""
//     --appendonly no) loses every history and lease. The next publication on a topic starts a
//     new epoch, so readers at an older position are told to reset, never given a silent gap.
//     With AOF (appendfsync always) a restarted server keeps the epochs and offsets.
//   - Sentinel's replication is asynchronous: the last publications acknowledged by a master
//     that dies may never reach the replica that Sentinel promotes. Their messages are lost
//     to the nodes that had not heard them yet, and so are their history entries, although
//     Publish returned their positions. The history does not go on as if nothing happened:
//     the first publication on the promoted replica starts a new epoch of every topic it
//     touches (the script sees that the server was a replica of the one that wrote the
//     history last), so readers are told to reset; this happens after a planned switchover
//     too, where nothing was lost. Until that first publication, History answers from what
//     the replica had, and a reader at a position it never received is told ErrEpochChanged.
//     A consumer of live messages must treat a message with another epoch than the one it
//     follows as a reset. Leases taken on the dead master may be lost too, admitting more
//     holders than max until they expire.
//   - A Redis Cluster shard failover has the same asynchronous-replication window, and is
//     handled the same way.
//
// # Options not covered here
//
// [Options.ClientOption] hands the rueidis client options over before the client is created,
// for what this package does not expose (buffer sizes, MaxFlushDelay, a custom dialer).
package redis
