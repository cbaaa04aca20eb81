package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/auth"
)

// AccessStore is the Redis store of the Server API's live decisions: access
// overrides (with their TTL), thread states and revocations. Every entry is
// a key in Redis, so that it holds on every node and survives a node's
// restart; the operations read a local cache (an access.Store) that every
// node keeps in step, so that nothing on a client's path waits for Redis.
//
// A write goes to Redis first (one script that also applies the rules and
// the limit), then to this node's cache, then is announced on the control
// channel; every node, the writer included, reads the entry back from Redis
// when the announcement arrives and puts what it finds in its cache, so that
// concurrent writes of one entry end the same everywhere. Because the
// announcement travels on the control channel before the commands the same
// Server API call sends (detach, push, kick), a node applies the change
// before their effects. After the control channel was (re)subscribed, and
// when its probe came back after a gap, the node reloads everything.
//
// When Redis cannot be written, a write fails with an error wrapping
// hub.ErrUnavailable and nothing changes in the cache; reads keep answering
// from the cache.
type AccessStore struct {
	rdb     *redis.Client
	log     *slog.Logger
	ctl     *Controller
	node    string
	keys    string // "<prefix>:{acc}:", before every entry's key
	index   string // the sorted set of entry keys by expiry
	timeout time.Duration
	cfg     access.Config
	cache   *access.Store
	// stale says the cache may have missed a change: set until the first
	// reload after subscribing, and when a change could not be read back;
	// the next probe of the control channel reloads.
	stale atomic.Bool
}

// wireEntry is an entry's value in Redis.
type wireEntry struct {
	Kind     string `json:"k"`
	ThreadID string `json:"t,omitempty"`
	UserID   string `json:"u,omitempty"`
	Access   int    `json:"a,omitempty"`
	Status   string `json:"s,omitempty"`
	Before   int64  `json:"b,omitempty"` // unix microseconds
	Expires  int64  `json:"x,omitempty"` // unix milliseconds; 0: never
}

// accessChange names an entry that changed, on the control channel.
type accessChange struct {
	Kind     string `json:"k"`
	ThreadID string `json:"t,omitempty"`
	UserID   string `json:"u,omitempty"`
}

// The scripts: KEYS[1] the entry, KEYS[2] the index; ARGV[1] now (ms),
// ARGV[2] the limit, ARGV[3] the value, ARGV[4] its expiry (ms, "0" never),
// ARGV[5] what the kind needs (the status, the revocation time).
const accessLib = `
local function put()
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  if not redis.call('ZSCORE', KEYS[2], KEYS[1]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
    return false
  end
  if ARGV[4] == '0' then
    redis.call('SET', KEYS[1], ARGV[3])
    redis.call('ZADD', KEYS[2], '+inf', KEYS[1])
  else
    redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[4])
    redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1])
  end
  return true
end
local function drop()
  redis.call('ZREM', KEYS[2], KEYS[1])
  return redis.call('DEL', KEYS[1])
end
`

var (
	// 1: set; 0: full.
	setAccessScript = redis.NewScript(accessLib + `
if put() then return 1 end
return 0`)
	// 1: there was a live override.
	deleteAccessScript = redis.NewScript(accessLib + `return drop()`)
	// 1: done; 0: full; -1: the thread is deleted.
	threadScript = redis.NewScript(accessLib + `
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).s == 'deleted' and ARGV[5] ~= 'deleted' then return -1 end
if ARGV[5] == '' then drop() return 1 end
if put() then return 1 end
return 0`)
	// {1, before}: revoked; {0, current}: an earlier time, ignored; {-1, 0}: full.
	revokeScript = redis.NewScript(accessLib + `
local cur = redis.call('GET', KEYS[1])
if cur then
  local b = cjson.decode(cur).b
  if tonumber(ARGV[5]) <= b then return {0, b} end
end
if put() then return {1, tonumber(ARGV[5])} end
return {-1, 0}`)
)

// NewAccessStore returns the node's AccessStore, loaded from Redis. Call it
// before Start: the node's control channel then feeds it.
func NewAccessStore(ctx context.Context, n *Node, cfg access.Config) (*AccessStore, error) {
	select {
	case <-n.started:
		return nil, errors.New("cluster: NewAccessStore after Start")
	default:
	}
	cfg = cfg.WithDefaults()
	s := &AccessStore{
		rdb: n.rdb, log: n.log, ctl: n.Controller, node: n.cfg.NodeID,
		keys: n.cfg.Prefix + ":{acc}:", index: n.cfg.Prefix + ":{acc}:idx",
		timeout: n.cfg.Timeout, cfg: cfg, cache: access.New(cfg),
	}
	s.stale.Store(true)
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	s.stale.Store(true) // until the control channel is subscribed and the store reloaded
	n.Controller.access = s
	return s, nil
}

// Cache is the node's cache: what the operations read.
func (s *AccessStore) Cache() *access.Store { return s.cache }

// Override returns the live override of userID in threadID, from the cache.
func (s *AccessStore) Override(threadID, userID string) (access.Override, bool) {
	return s.cache.Override(threadID, userID)
}

// ThreadStatus returns the status of threadID, from the cache.
func (s *AccessStore) ThreadStatus(threadID string) string { return s.cache.ThreadStatus(threadID) }

// Lookup and RevokedBefore read the cache, as access.Store's do.
func (s *AccessStore) Lookup(threadID, userID string) (auth.Access, bool) {
	return s.cache.Lookup(threadID, userID)
}

// RevokedBefore returns the revocation time of userID, from the cache.
func (s *AccessStore) RevokedBefore(userID string) (time.Time, bool) {
	return s.cache.RevokedBefore(userID)
}

// key returns the Redis key of an entry: the thread's length before it
// keeps an override's two ids apart whatever they contain.
func (s *AccessStore) key(k access.Kind, threadID, userID string) string {
	switch k {
	case access.KindOverride:
		return s.keys + "o:" + strconv.Itoa(len(threadID)) + ":" + threadID + ":" + userID
	case access.KindThread:
		return s.keys + "t:" + threadID
	default:
		return s.keys + "r:" + userID
	}
}

func millis(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// write runs one of the scripts for e.
func (s *AccessStore) write(ctx context.Context, script *redis.Script, e access.Entry, extra string) (any, error) {
	w := wireEntry{Kind: string(e.Kind), ThreadID: e.ThreadID, UserID: e.UserID, Access: int(e.Access), Status: e.Status}
	if !e.Before.IsZero() {
		w.Before = e.Before.UnixMicro()
	}
	if !e.ExpiresAt.IsZero() {
		w.Expires = e.ExpiresAt.UnixMilli()
	}
	val, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode access entry: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := script.Run(ctx, s.rdb, []string{s.key(e.Kind, e.ThreadID, e.UserID), s.index},
		time.Now().UnixMilli(), s.cfg.MaxEntries, val, millis(e.ExpiresAt), extra).Result()
	if err != nil {
		return nil, unavailable("access write", err)
	}
	return res, nil
}

// announce tells every node that e's entry changed.
func (s *AccessStore) announce(ctx context.Context, k access.Kind, threadID, userID string) error {
	err := s.ctl.publish(ctx, controlMessage{Node: s.node, Access: &accessChange{Kind: string(k), ThreadID: threadID, UserID: userID}})
	if err != nil {
		return fmt.Errorf("cluster: the access change is stored but other nodes were not told: %w", err)
	}
	return nil
}

// stateDeadline is when a thread state or revocation written now expires,
// at the millisecond Redis keeps.
func (s *AccessStore) stateDeadline() time.Time {
	return time.UnixMilli(time.Now().Add(s.cfg.StateTTL).UnixMilli())
}

// SetAccess overrides the access of userID in threadID for ttl (0: until
// deleted), as access.Store.SetAccess does, in Redis.
func (s *AccessStore) SetAccess(ctx context.Context, threadID, userID string, acc auth.Access, ttl time.Duration) (access.Override, error) {
	e := access.Entry{Kind: access.KindOverride, ThreadID: threadID, UserID: userID, Access: acc}
	if ttl > 0 {
		e.ExpiresAt = time.UnixMilli(time.Now().Add(ttl).UnixMilli())
	}
	res, err := s.write(ctx, setAccessScript, e, "")
	if err != nil {
		return access.Override{}, err
	}
	if n, _ := res.(int64); n != 1 {
		return access.Override{}, access.ErrFull
	}
	s.cache.Put(e)
	return access.Override{Access: acc, ExpiresAt: e.ExpiresAt}, s.announce(ctx, e.Kind, threadID, userID)
}

// DeleteAccess removes the override of userID in threadID; it reports
// whether there was a live one.
func (s *AccessStore) DeleteAccess(ctx context.Context, threadID, userID string) (bool, error) {
	e := access.Entry{Kind: access.KindOverride, ThreadID: threadID, UserID: userID}
	res, err := s.write(ctx, deleteAccessScript, e, "")
	if err != nil {
		return false, err
	}
	s.cache.Remove(e.Kind, threadID, userID)
	deleted := res == int64(1)
	if !deleted {
		return false, nil
	}
	return true, s.announce(ctx, e.Kind, threadID, userID)
}

// SetThreadStatus marks threadID closed or deleted for StateTTL, or clears
// its mark, as access.Store.SetThreadStatus does, in Redis.
func (s *AccessStore) SetThreadStatus(ctx context.Context, threadID, status string) error {
	e := access.Entry{Kind: access.KindThread, ThreadID: threadID, Status: status}
	if status != access.StatusOpen {
		e.ExpiresAt = s.stateDeadline()
	}
	res, err := s.write(ctx, threadScript, e, status)
	if err != nil {
		return err
	}
	switch n, _ := res.(int64); n {
	case 0:
		return access.ErrFull
	case -1:
		return access.ErrDeleted
	}
	s.cache.Put(e)
	return s.announce(ctx, e.Kind, threadID, "")
}

// Revoke refuses the tokens of userID issued at or before before, for
// StateTTL, as access.Store.Revoke does (an earlier time than the current
// one is ignored), in Redis, at the microsecond.
func (s *AccessStore) Revoke(ctx context.Context, userID string, before time.Time) (time.Time, error) {
	before = time.UnixMicro(before.UnixMicro())
	e := access.Entry{Kind: access.KindRevocation, UserID: userID, Before: before, ExpiresAt: s.stateDeadline()}
	res, err := s.write(ctx, revokeScript, e, strconv.FormatInt(before.UnixMicro(), 10))
	if err != nil {
		return time.Time{}, err
	}
	r, _ := res.([]any)
	if len(r) != 2 {
		return time.Time{}, fmt.Errorf("cluster: revoke answered %v", res)
	}
	done, _ := r[0].(int64)
	got, _ := r[1].(int64)
	switch done {
	case -1:
		return time.Time{}, access.ErrFull
	case 0:
		return time.UnixMicro(got), nil
	}
	s.cache.Put(e)
	return before, s.announce(ctx, e.Kind, "", userID)
}

// kindOf returns the kind a wire name stands for.
func kindOf(name string) (access.Kind, bool) {
	if len(name) != 1 {
		return 0, false
	}
	switch k := access.Kind(name[0]); k {
	case access.KindOverride, access.KindThread, access.KindRevocation:
		return k, true
	}
	return 0, false
}

func decodeEntry(raw string) (access.Entry, error) {
	var w wireEntry
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return access.Entry{}, fmt.Errorf("cluster: malformed access entry: %w", err)
	}
	k, ok := kindOf(w.Kind)
	if !ok {
		return access.Entry{}, fmt.Errorf("cluster: access entry of kind %q", w.Kind)
	}
	if k == access.KindThread && w.Status != access.StatusClosed && w.Status != access.StatusDeleted {
		return access.Entry{}, fmt.Errorf("cluster: thread mark %q", w.Status)
	}
	e := access.Entry{Kind: k, ThreadID: w.ThreadID, UserID: w.UserID, Access: auth.Access(w.Access), Status: w.Status}
	if w.Before != 0 {
		e.Before = time.UnixMicro(w.Before)
	}
	if w.Expires != 0 {
		e.ExpiresAt = time.UnixMilli(w.Expires)
	}
	return e, nil
}

// reloadBatch is how many entries one MGET reads.
const reloadBatch = 1000

// reload replaces the cache with what Redis holds: the live members of the
// index (one read, so one moment's set of entries), then their values. A
// change made meanwhile is announced after it, and read again then.
func (s *AccessStore) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*s.timeout)
	defer cancel()
	keys, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.index, Start: "(" + strconv.FormatInt(time.Now().UnixMilli(), 10), Stop: "+inf", ByScore: true}).Result()
	if err != nil {
		return unavailable("access reload", err)
	}
	var entries []access.Entry
	for len(keys) > 0 {
		batch := keys[:min(len(keys), reloadBatch)]
		keys = keys[len(batch):]
		vals, err := s.rdb.MGet(ctx, batch...).Result()
		if err != nil {
			return unavailable("access reload", err)
		}
		for _, v := range vals {
			raw, ok := v.(string)
			if !ok {
				continue // expired or deleted since the index was read
			}
			e, err := decodeEntry(raw)
			if err != nil {
				s.log.Warn("cluster: access entry skipped", "err", err)
				continue
			}
			entries = append(entries, e)
		}
	}
	s.cache.Replace(entries)
	s.stale.Store(false)
	return nil
}

// The control channel's reader calls these, one at a time, in the order of
// the channel.

// changed reads an announced entry back from Redis into the cache.
func (s *AccessStore) changed(ctx context.Context, c accessChange) {
	k, ok := kindOf(c.Kind)
	if !ok {
		s.log.Warn("cluster: access change of an unknown kind skipped", "kind", c.Kind)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raw, err := s.rdb.Get(ctx, s.key(k, c.ThreadID, c.UserID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		s.cache.Remove(k, c.ThreadID, c.UserID)
		return
	case err != nil:
		s.stale.Store(true)
		s.log.Warn("cluster: an access change could not be read; reloading at the next probe", "err", err)
		return
	}
	e, err := decodeEntry(raw)
	if err != nil {
		s.log.Warn("cluster: access change skipped", "err", err)
		return
	}
	s.cache.Put(e)
}

// subscribed reloads everything: the subscription is new, or was lost and
// may have missed changes.
func (s *AccessStore) subscribed(ctx context.Context) {
	if err := s.reload(ctx); err != nil {
		s.stale.Store(true)
		s.log.Warn("cluster: access store not reloaded; retrying at the next probe", "err", err)
	}
}

// probed runs when this node's probe comes back; gap says it came later
// than it should have (the subscription may have missed changes).
func (s *AccessStore) probed(ctx context.Context, gap bool) {
	if gap {
		s.stale.Store(true)
	}
	if s.stale.Load() {
		s.subscribed(ctx)
	}
}

// ready fails while the cache may have missed changes.
func (s *AccessStore) ready() error {
	if s.stale.Load() {
		return errors.New("cluster: the access store may have missed changes and is not reloaded yet")
	}
	return nil
}
