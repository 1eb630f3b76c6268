package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// A lease set is a sorted set (kindLease) of holders scored by the time their lease expires,
// in milliseconds of the Redis server's clock (so that the nodes' clocks do not matter). The
// key itself expires with its longest lease, so that an abandoned set goes away.

// acquireScript: KEYS: the set. ARGV: holder, max, ttl in ms. Returns 1 when the lease is
// held (taken or renewed), 0 when the set is full.
var acquireScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  return 1
end
return 0
`)

// renewScript: KEYS: the set. ARGV: ttl in ms, then the holders. Extends the unexpired leases
// among them; returns how many.
var renewScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) > now then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    n = n + 1
  end
end
if n > 0 and redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return n
`)

// Acquire takes a lease for holder in set, valid for ttl, if set holds fewer than max
// unexpired leases, and reports whether it did. A holder that already has a lease keeps it
// (renewed). Expiry is judged by the Redis server's clock.
func (b *Broker) Acquire(ctx context.Context, set, holder string, max int, ttl time.Duration) (bool, error) {
	client, _, err := b.ready()
	if err != nil {
		return false, err
	}
	if ttl < time.Millisecond {
		return false, errors.New("broker/redis: acquire: ttl must be at least 1 ms")
	}
	if max <= 0 {
		return false, nil
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	n, err := acquireScript.Exec(ctx, client, []string{b.leaseKey(set)},
		[]string{holder, strconv.Itoa(max), strconv.FormatInt(ttl.Milliseconds(), 10)}).AsInt64()
	if err != nil {
		return false, b.fail(ctx, "acquire", err)
	}
	return n == 1, nil
}

// Renew extends by ttl the unexpired leases of holders in set. A lease that expired already is
// not revived: its holder must Acquire again.
func (b *Broker) Renew(ctx context.Context, set string, holders []string, ttl time.Duration) error {
	client, _, err := b.ready()
	if err != nil {
		return err
	}
	if ttl < time.Millisecond {
		return errors.New("broker/redis: renew: ttl must be at least 1 ms")
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	for len(holders) > 0 {
		n := min(len(holders), 1000)
		args := append([]string{strconv.FormatInt(ttl.Milliseconds(), 10)}, holders[:n]...)
		if err := renewScript.Exec(ctx, client, []string{b.leaseKey(set)}, args).Error(); err != nil {
			return b.fail(ctx, "renew", err)
		}
		holders = holders[n:]
	}
	return nil
}

// Release gives holder's lease in set back.
func (b *Broker) Release(ctx context.Context, set, holder string) error {
	client, _, err := b.ready()
	if err != nil {
		return err
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	if err := client.Do(ctx, client.B().Zrem().Key(b.leaseKey(set)).Member(holder).Build()).Error(); err != nil {
		return b.fail(ctx, "release", err)
	}
	return nil
}

// leaseKey returns the key of a lease set.
func (b *Broker) leaseKey(set string) string {
	return b.name(b.partitionOf(set), kindLease, set)
}
