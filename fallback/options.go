package fallback

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/metrics"
)

// Options configures a Server. A nil *Options is not valid: Accept is required.
type Options struct {
	// Accept runs for each new session, on a goroutine of its own: the application (herald's
	// nes server) serves the session as a connection until it closes. Required.
	Accept func(s *Session)

	// Path is the base path of the endpoints: Path+"/sse", Path+"/send" and Path+"/poll".
	// Empty means any path ending in "/nes/sse", "/nes/send" or "/nes/poll".
	Path string

	// CheckOrigin decides whether a browser request with an Origin header may open, resume or
	// post to a session; it is given the request. Nil means only the request's own host.
	// Requests without Origin (not from a browser) pass, except POSTs that a browser marks
	// cross-site (Sec-Fetch-Site).
	CheckOrigin func(r *http.Request) bool

	// BindCookie names a cookie (the nes authentication cookie) whose value binds the session:
	// posting to it or resuming it with another value is refused with 403, so that a leaked
	// ticket is useless without the cookie. Empty means sessions are bound to their Origin
	// only.
	BindCookie string

	// Key signs tickets (HMAC-SHA-256). Nodes that route each other's sessions share it.
	// Nil means a random key: tickets of this process only.
	Key []byte

	// Node names this process in tickets, so that another node can route a POST to the one
	// that holds the session. At most 64 bytes. Empty means a random name.
	Node string

	// Broker links this server to the other nodes of a cluster, which must share Key, so that
	// clients need no sticky sessions: a POST, poll or resumed stream that reaches a node other
	// than the session's (the one named in its ticket) is carried to that node through the
	// broker (see PROTOCOL.md, "Several nodes"). Node is then the broker node's name. Forwarded
	// batches and relayed messages are broker messages: keep MaxBody, and the messages the
	// application sends, within what the broker carries (NATS: max_payload, 1 MiB by default).
	// Nil means one node: requests for another node's sessions get 404, and resumed streams a
	// reset.
	Broker *broker.Node

	// ForwardTimeout bounds each request to another node of the cluster (the Node's own
	// RequestTimeout bounds it too): a POST forwarded to the session's node that is not
	// answered in time gets 503 (the client retries it), and a stream relayed from a node that
	// does not answer ends (the client resumes it). A poll forwarded to the session's node
	// asks it again every ForwardTimeout/2 until PollTimeout. Zero means 2 seconds.
	ForwardTimeout time.Duration

	// Sessions keeps the sessions. Nil means an in-memory table, for one node.
	Sessions Sessions

	// Grace is how long a session waits for its client to come back (a resumed stream, the
	// next poll) before it ends. It must be longer than RetryMax, the longest a browser waits
	// before it resumes a dropped stream. Zero means 30 seconds.
	Grace time.Duration

	// BufferMessages and BufferBytes bound what waits for the client: the messages not yet
	// acknowledged. Past them the oldest messages already written to a stream are dropped (a
	// resume from before them gets a reset), and when that is not enough the session ends with
	// ErrBufferFull. Zero means 1024 messages and 4 MiB.
	BufferMessages int
	BufferBytes    int

	// MaxBody bounds one POST's body, in bytes; MaxMessages bounds its messages. Larger POSTs
	// get 413. Zero means 8 MiB and 100. Both are told to the client in the open event.
	MaxBody     int64
	MaxMessages int

	// InboxBytes bounds the messages posted and not yet received by the application. A POST
	// that would pass it gets 503 with Retry-After, and is applied when the client retries
	// it. Zero means 16 MiB.
	InboxBytes int

	// PollTimeout is how long a long-poll waits for a message before it answers empty. Zero
	// means 25 seconds (below the 30 s idle timeout of common proxies).
	PollTimeout time.Duration

	// KeepAlive is how often an idle stream gets a comment line, so that proxies keep it open.
	// Zero means 15 seconds.
	KeepAlive time.Duration

	// RetryMin and RetryMax bound the "retry:" time each stream is given, drawn at random
	// between them, so that the clients of a restarted server do not all come back at once.
	// Zero means 1 and 4 seconds.
	RetryMin, RetryMax time.Duration

	// MaxStreamAge and MaxStreamBytes end a stream on purpose once it has lasted this long or
	// carried this many bytes of messages, for load balancers that cap response lifetimes; the
	// client resumes at once, losing nothing. Zero means 5 minutes and 16 MiB; negative means
	// never.
	MaxStreamAge   time.Duration
	MaxStreamBytes int

	// WriteTimeout bounds each write to a stream. Zero means 10 seconds.
	WriteTimeout time.Duration

	// IsShutdown tells a server shutdown among the reasons given to Session.Close: the client
	// then hears close code 1001 and comes back elsewhere. Nil means none is.
	IsShutdown func(reason error) bool

	// Logger receives refused requests and ended sessions at debug level. Nil means none.
	Logger *slog.Logger

	// Metrics counts resumes: hits, misses (an unknown session) and resets (see package
	// metrics). Nil means none. herald's nes server sets it to its own Options.Metrics.
	Metrics metrics.Recorder
}

func (o *Options) withDefaults() Options {
	c := *o
	dur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	num := func(n *int, def int) {
		if *n <= 0 {
			*n = def
		}
	}
	dur(&c.Grace, 30*time.Second)
	dur(&c.PollTimeout, 25*time.Second)
	dur(&c.KeepAlive, 15*time.Second)
	dur(&c.RetryMin, time.Second)
	dur(&c.RetryMax, 4*time.Second)
	dur(&c.MaxStreamAge, 5*time.Minute)
	dur(&c.WriteTimeout, 10*time.Second)
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	num(&c.BufferMessages, 1024)
	num(&c.BufferBytes, 4<<20)
	num(&c.MaxMessages, 100)
	num(&c.InboxBytes, 16<<20)
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = 16 << 20
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 8 << 20
	}
	if len(c.Key) == 0 {
		c.Key = make([]byte, 32)
		_, _ = rand.Read(c.Key)
	}
	dur(&c.ForwardTimeout, 2*time.Second)
	if node := c.clusterNode(); node != nil {
		c.Node = node.Name()
	}
	if c.Node == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.Node = hex.EncodeToString(b)
	}
	if len(c.Node) > maxNodeLen {
		c.Node = c.Node[:maxNodeLen]
	}
	if c.Sessions == nil {
		c.Sessions = NewMemorySessions()
	}
	return c
}

// clusterNode returns Broker, or nil.
func (o *Options) clusterNode() clusterNode {
	if o.Broker == nil {
		return nil
	}
	return o.Broker
}
