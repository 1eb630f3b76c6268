package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/internal/epoch"
)

// A topic's history is two keys in its partition's slot: a hash (kindMeta) holding the epoch
// ("e"), the last offset ("o") and the replication ID of the server that wrote it last ("r"),
// and a stream (kindStream) whose entry IDs are "<offset>-0", with the payload in field "d".
// A missing hash means the history was lost (a Redis restart without persistence, an expiry,
// a flush): the next publication starts a new epoch, with a fresh random name, and an empty
// stream. So does a publication on a server promoted from a replica of the server that wrote
// the history last (its previous replication ID, master_replid2, is the one recorded): the
// writes that had not reached it when it was promoted are lost, and the offsets they had
// would otherwise be given to other messages. A server restarted from its append-only file
// gets a new replication ID, but not that one as its previous: its epochs go on.

// publishScript appends a message to a topic's history and publishes it, atomically.
// KEYS: meta, stream. ARGV: payload, size, ttl in ms (0: none), a new epoch (used when the
// history is missing), channel, the publish command (PUBLISH or SPUBLISH).
var publishScript = rueidis.NewLuaScript(`
local info = redis.call('INFO', 'replication')
local rid = string.match(info, 'master_replid:(%w+)') or ''
local rid2 = string.match(info, 'master_replid2:(%w+)') or ''
local epoch = redis.call('HGET', KEYS[1], 'e')
local r = redis.call('HGET', KEYS[1], 'r')
if epoch and r and r ~= rid and r == rid2 then
  epoch = false
end
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
if r ~= rid then
  redis.call('HSET', KEYS[1], 'r', rid)
end
local off = redis.call('HINCRBY', KEYS[1], 'o', 1)
local id = string.format('%d', off)
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[2], id .. '-0', 'd', ARGV[1])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
redis.call(ARGV[6], ARGV[5], 'h' .. id .. ':' .. epoch .. '\n' .. ARGV[1])
return {off, epoch}
`)

// historyScript reads a topic's history. KEYS: meta, stream. ARGV: the first ID to return,
// the most entries to return (0: all). It returns the epoch ("" when there is no history),
// the last offset, the offset of the oldest entry kept (0: none) and the entries.
var historyScript = rueidis.NewLuaScriptReadOnly(`
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then return {'', 0, 0, {}} end
local off = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local first = 0
local f = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #f > 0 then first = tonumber(string.match(f[1][1], '^(%d+)')) end
local entries
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+')
end
return {epoch, off, first, entries}
`)

// publishHistory runs publishScript.
func (b *Broker) publishHistory(ctx context.Context, client rueidis.Client, part int, topic, channel string, payload []byte, h *broker.HistoryPolicy) (broker.Position, error) {
	ttl := h.TTL.Milliseconds()
	if h.TTL > 0 && ttl == 0 {
		ttl = 1
	}
	cmd := "PUBLISH"
	if b.opts.Cluster {
		cmd = "SPUBLISH"
	}
	res, err := publishScript.Exec(ctx, client,
		[]string{b.name(part, kindMeta, topic), b.name(part, kindStream, topic)},
		[]string{string(payload), strconv.Itoa(h.Size), strconv.FormatInt(ttl, 10), epoch.New(), channel, cmd},
	).ToArray()
	if err != nil {
		return broker.Position{}, err
	}
	if len(res) != 2 {
		return broker.Position{}, fmt.Errorf("unexpected reply of %d elements from the publish script", len(res))
	}
	off, err := res[0].AsInt64()
	if err != nil {
		return broker.Position{}, err
	}
	ep, err := res[1].ToString()
	if err != nil {
		return broker.Position{}, err
	}
	return broker.Position{Epoch: ep, Offset: uint64(off)}, nil
}

// History returns up to limit messages of topic published after position after, oldest first
// (limit 0 or less: every message kept), and the topic's latest position, zero when the topic
// has no history. It fails with broker.ErrEpochChanged when after is from another epoch (or
// the topic's history is gone) and with broker.ErrTrimmed when messages after it were trimmed.
// A zero after reads from the oldest message kept. Reading and checking are one Lua script, so
// the answer is consistent with the publications around it.
func (b *Broker) History(ctx context.Context, topic string, after broker.Position, limit int) ([]broker.Record, broker.Position, error) {
	client, parts, err := b.ready()
	if err != nil {
		return nil, broker.Position{}, err
	}
	part := b.partitionOf(topic)
	if err := parts[part].state(); err != nil {
		return nil, broker.Position{}, fmt.Errorf("broker/redis: history: %w", err)
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	start := strconv.FormatUint(after.Offset+1, 10) + "-0"
	res, err := historyScript.Exec(ctx, client,
		[]string{b.name(part, kindMeta, topic), b.name(part, kindStream, topic)},
		[]string{start, strconv.Itoa(max(limit, 0))},
	).ToArray()
	if err != nil {
		return nil, broker.Position{}, b.fail(ctx, "history", err)
	}
	if len(res) != 4 {
		return nil, broker.Position{}, fmt.Errorf("broker/redis: history: unexpected reply of %d elements", len(res))
	}
	epoch, _ := res[0].ToString()
	last, _ := res[1].AsInt64()
	first, _ := res[2].AsInt64()
	if epoch == "" {
		if after.IsZero() {
			return nil, broker.Position{}, nil
		}
		return nil, broker.Position{}, fmt.Errorf("broker/redis: history of %q: %w (it is gone)", topic, broker.ErrEpochChanged)
	}
	cur := broker.Position{Epoch: epoch, Offset: uint64(last)}
	if !after.IsZero() {
		if after.Epoch != epoch || after.Offset > cur.Offset {
			return nil, cur, fmt.Errorf("broker/redis: history of %q: %w (%s, now %s)", topic, broker.ErrEpochChanged, after.Epoch, epoch)
		}
		if after.Offset < cur.Offset && (first == 0 || uint64(first) > after.Offset+1) {
			return nil, cur, fmt.Errorf("broker/redis: history of %q: %w (after %d, oldest kept %d)", topic, broker.ErrTrimmed, after.Offset, first)
		}
	}
	entries, err := res[3].ToArray()
	if err != nil {
		return nil, cur, fmt.Errorf("broker/redis: history: %w", err)
	}
	records := make([]broker.Record, 0, len(entries))
	for _, e := range entries {
		rec, err := parseEntry(e, epoch)
		if err != nil {
			return nil, cur, fmt.Errorf("broker/redis: history of %q: %w", topic, err)
		}
		records = append(records, rec)
	}
	return records, cur, nil
}

// parseEntry parses one stream entry: [id, [field, value, ...]].
func parseEntry(e rueidis.RedisMessage, epoch string) (broker.Record, error) {
	parts, err := e.ToArray()
	if err != nil {
		return broker.Record{}, fmt.Errorf("bad stream entry: %w", err)
	}
	if len(parts) != 2 {
		return broker.Record{}, fmt.Errorf("bad stream entry of %d elements", len(parts))
	}
	id, err := parts[0].ToString()
	if err != nil {
		return broker.Record{}, err
	}
	offStr, _, _ := strings.Cut(id, "-")
	off, err := strconv.ParseUint(offStr, 10, 64)
	if err != nil {
		return broker.Record{}, fmt.Errorf("bad stream entry id %q", id)
	}
	fields, err := parts[1].ToArray()
	if err != nil {
		return broker.Record{}, err
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if k, _ := fields[i].ToString(); k == "d" {
			v, err := fields[i+1].ToString()
			if err != nil {
				return broker.Record{}, err
			}
			return broker.Record{Payload: []byte(v), Pos: broker.Position{Epoch: epoch, Offset: off}}, nil
		}
	}
	return broker.Record{}, fmt.Errorf("stream entry %q has no payload", id)
}
