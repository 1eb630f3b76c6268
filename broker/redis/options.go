package redis

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Options configure a Broker. Exactly one way to reach Redis is given: Addrs alone (one
// server, or with Cluster the seed nodes of a Redis Cluster), or SentinelMaster with
// SentinelAddrs.
type Options struct {
	// Addrs are the addresses ("host:port") of the server, or with Cluster of some nodes of
	// the cluster (the others are discovered). Without Cluster only the first is used.
	Addrs []string
	// SentinelMaster is the name of the master that the Sentinels at SentinelAddrs monitor.
	// The broker follows the master across failovers.
	SentinelMaster string
	// SentinelAddrs are the addresses of the Sentinels ("host:port").
	SentinelAddrs []string
	// SentinelUsername and SentinelPassword authenticate with the Sentinels. Empty means none.
	SentinelUsername, SentinelPassword string
	// Cluster says that Addrs are nodes of a Redis Cluster. Topics are then spread over
	// Partitions hash slots, and published and heard with SPUBLISH and SSUBSCRIBE.
	Cluster bool
	// Partitions is the number of hash-slot partitions that topics are spread over with
	// Cluster; each partition is one subscribed connection to the node that owns its slot.
	// Zero means 16. It must be the same on every node. Ignored without Cluster (one
	// partition).
	Partitions int

	// Username and Password authenticate with Redis (AUTH). Empty means none.
	Username, Password string
	// TLS, when set, is used to connect to Redis (and to the Sentinels). Nil means plain TCP.
	TLS *tls.Config
	// DB is the database number (SELECT). Zero means 0. Redis Cluster has only database 0.
	DB int
	// Prefix is put before every key and channel name the broker uses, so that several
	// applications can share a Redis. Zero means "herald:". It must be the same on every node.
	Prefix string

	// DialTimeout bounds connecting to Redis. Zero means 1 s.
	DialTimeout time.Duration
	// Timeout bounds every command (when the caller's context allows more) and is how long an
	// unanswered connection is given before it counts as lost. Zero means 2 s.
	Timeout time.Duration
	// ReconnectDelay is the wait between two attempts to restore a lost link. Zero means
	// 200 ms.
	ReconnectDelay time.Duration
	// QueueSize bounds the messages heard but not yet handed to the Handler, per partition.
	// When it is full, messages are dropped (counted by Dropped) and the Handler is told of a
	// discontinuity on their topics. Zero means 8192.
	QueueSize int

	// Logger, when set, receives the link's losses and restorations. Nil logs nothing.
	Logger *slog.Logger

	// ClientOption, when set, is called with the *rueidis.ClientOption that the broker built
	// (as an any, so that rueidis is not part of this package's API) before the client is
	// created: an escape hatch for settings this package does not offer. Changing what the
	// broker relies on (DisableCache, ForceSingleClient, the Sentinel and Cluster settings) is
	// unsupported.
	ClientOption func(clientOption any)
}

// withDefaults returns a copy of o with the defaults filled in, or an error.
func (o Options) withDefaults() (Options, error) {
	if len(o.Addrs) == 0 && (o.SentinelMaster == "" || len(o.SentinelAddrs) == 0) {
		return o, errors.New("broker/redis: Options needs Addrs, or SentinelMaster and SentinelAddrs")
	}
	if o.SentinelMaster != "" && o.Cluster {
		return o, errors.New("broker/redis: Options.Cluster and SentinelMaster are exclusive")
	}
	if o.Cluster && o.DB != 0 {
		return o, errors.New("broker/redis: Options.DB must be 0 with Cluster (Redis Cluster has only database 0)")
	}
	if o.Cluster && strings.ContainsAny(o.Prefix, "{}") {
		return o, errors.New("broker/redis: Options.Prefix must not hold braces with Cluster (they would make it the hash tag of every key)")
	}
	if o.Partitions <= 0 {
		o.Partitions = 16
	}
	if !o.Cluster {
		o.Partitions = 1
	}
	if o.Prefix == "" {
		o.Prefix = "herald:"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = 200 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	return o, nil
}

// clientOption builds rueidis's options for node.
func (o *Options) clientOption(node string) rueidis.ClientOption {
	co := rueidis.ClientOption{
		InitAddress:      o.Addrs,
		Username:         o.Username,
		Password:         o.Password,
		TLSConfig:        o.TLS,
		SelectDB:         o.DB,
		ClientName:       "herald-" + strings.Map(noSpace, node),
		DisableCache:     true,
		ConnWriteTimeout: o.Timeout,
	}
	co.Dialer.Timeout = o.DialTimeout
	co.Dialer.KeepAlive = o.Timeout / 2
	switch {
	case o.SentinelMaster != "":
		co.InitAddress = o.SentinelAddrs
		co.Sentinel = rueidis.SentinelOption{
			MasterSet:               o.SentinelMaster,
			Username:                o.SentinelUsername,
			Password:                o.SentinelPassword,
			TLSConfig:               o.TLS,
			TopologyRefreshInterval: 5 * time.Second,
		}
		co.Sentinel.Dialer.Timeout = o.DialTimeout
	case o.Cluster:
	default:
		co.InitAddress = o.Addrs[:1]
		co.ForceSingleClient = true
	}
	if o.ClientOption != nil {
		o.ClientOption(&co)
	}
	return co
}

// noSpace replaces what CLIENT SETNAME refuses.
func noSpace(r rune) rune {
	if r <= ' ' || r > '~' {
		return '_'
	}
	return r
}
