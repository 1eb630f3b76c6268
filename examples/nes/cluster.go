package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/metrics/prometheus"
)

// fallbackKeyEnv names the environment variable that holds the key signing the fallback's
// tickets. Every node of one demo must be given the same.
const fallbackKeyEnv = "HERALD_FALLBACK_KEY"

// newBroker returns the broker that -redis or -nats names, or nil for one node. Giving both is
// a mistake.
func newBroker(redisAddr, natsURL string) (broker.Broker, error) {
	switch {
	case redisAddr != "" && natsURL != "":
		return nil, errors.New("-redis and -nats are exclusive: give one of them, or neither for one node")
	case redisAddr != "":
		b, err := redis.New(redis.Options{Addrs: []string{redisAddr}, Prefix: "herald-nes-demo:"})
		if err != nil {
			return nil, fmt.Errorf("-redis %s: %w", redisAddr, err)
		}
		return b, nil
	case natsURL != "":
		return nats.New(natsURL, &nats.Options{Prefix: "herald-nes-demo"}), nil
	}
	return nil, nil
}

// fallbackKey returns the key that signs the fallback's tickets on every node: the value of
// HERALD_FALLBACK_KEY, or, when it is unset, one derived from the demo's fixed password (fine
// for the demo, whose sealing password is in its source anyway; never in production). warn
// says which.
func fallbackKey(warn func(string)) []byte {
	if k := os.Getenv(fallbackKeyEnv); k != "" {
		return []byte(k)
	}
	warn(fallbackKeyEnv + " is unset: the nodes sign the fallback's tickets with a key derived from the demo's public password; set it to a secret shared by every node")
	sum := sha256.Sum256([]byte("fallback key: " + password))
	return sum[:]
}

// newMetrics returns a Prometheus recorder for herald.Options.Metrics and the handler of
// GET /metrics, both on a registry of their own.
func newMetrics() (*prometheus.Recorder, http.Handler, error) {
	reg := promclient.NewRegistry()
	rec, err := prometheus.New(reg, nil)
	if err != nil {
		return nil, nil, err
	}
	return rec, prometheus.Handler(reg), nil
}
