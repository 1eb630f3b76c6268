// Package epoch names the epochs of topics' histories (broker.Position.Epoch) for the brokers
// herald ships: package broker's MemoryHub and broker/redis.
package epoch

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a new epoch name: 16 hex digits from crypto/rand, so that a history started
// again (after its engine lost it) never takes the name of an earlier one.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read panics rather than fail, since Go 1.24)
	return hex.EncodeToString(b[:])
}
