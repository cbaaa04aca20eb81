package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/presence"
)

// contributeScript sets (or, with an empty value, removes) one node's
// contribution to a user's presence and publishes the user's contributions
// before and after on the control channel, in one step: the changes of a
// user reach every node in the order they were made, and each node derives
// both presences from them. The user's lastSeen is written when no node
// has a read connection left; the hash expires lastSeenTTL after its last
// node field is gone.
//
// KEYS[1] the user's hash. ARGV: field, value, channel, publishing node,
// user id, lastSeen TTL in seconds.
var contributeScript = redis.NewScript(`
local h = KEYS[1]
local old = redis.call('HGETALL', h)
if ARGV[2] == '' then
  if redis.call('HDEL', h, ARGV[1]) == 0 then return 0 end
else
  if redis.call('HGET', h, ARGV[1]) == ARGV[2] then return 0 end
  redis.call('HSET', h, ARGV[1], ARGV[2])
end
local function scan(fields)
  local online, nodes = false, 0
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'n:' then
      nodes = nodes + 1
      if cjson.decode(fields[i + 1]).s then online = true end
    end
  end
  return online, nodes
end
local wasOnline = scan(old)
local new = redis.call('HGETALL', h)
local online, nodes = scan(new)
if wasOnline and not online then
  local t = redis.call('TIME')
  redis.call('HSET', h, 'ls', t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)))
  new = redis.call('HGETALL', h)
end
if nodes == 0 then
  redis.call('EXPIRE', h, ARGV[6])
else
  redis.call('PERSIST', h)
end
redis.call('PUBLISH', ARGV[3], cjson.encode({n = ARGV[4], pr = {u = ARGV[5], o = old, w = new}}))
return 1`)

// beatScript refreshes a node's liveness with the Redis clock (no skew
// between the nodes' clocks) and returns 1 when the node was not listed:
// it is new, or another node took it for dead and removed its presence.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)), ARGV[1])`)

// claimScript returns the nodes whose last heartbeat is older than ARGV[1]
// ms (the caller excepted, ARGV[2]) and claims their cleanup in the same
// step: their score becomes now, so no other node claims them again unless
// the claimer itself fails to finish within DeadAfter.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now - tonumber(ARGV[1])))
local won = {}
for _, id in ipairs(dead) do
  if id ~= ARGV[2] then
    redis.call('ZADD', KEYS[1], string.format('%d', now), id)
    won[#won + 1] = id
  end
end
return won`)

// lastSeenTTL is how long a user's lastSeen is kept once they are offline
// on every node.
const lastSeenTTL = 24 * time.Hour

// maxPendingNotes bounds the relationships waiting to be shared; beyond,
// they are dropped (the other nodes learn them at the next listing).
const maxPendingNotes = 4096

// Presence is the Redis presence.Store. Each node writes its contribution
// to each of its users' presence into the user's hash (one field per node)
// and lists those users in a set of its own; it refreshes its liveness
// every Heartbeat. A node whose heartbeat is older than DeadAfter is
// claimed by one live node, which removes its contributions: its users
// turn offline (or to what their other nodes hold) within DeadAfter + one
// Heartbeat of its last heartbeat, with no goodbye needed.
//
// Writes go through one goroutine (run), which reads the latest
// contribution of each user marked changed, so that a burst of changes of
// one user is one write and a user's writes are in order. Lock order: mu
// only guards the pending sets; nothing is called under it.
type Presence struct {
	rdb     *redis.Client
	log     *slog.Logger
	cfg     Config
	channel string // the control channel
	local   presence.Local

	mu      sync.Mutex
	dirty   map[string]struct{}
	notes   []presence.Note
	dropped int
	wake    chan struct{}

	written map[string]struct{} // users this node contributes to; run's own
	// beating is since when this node's heartbeats succeed without a gap
	// (zero: the last one failed); run's own. A node reaps others only once
	// it has beaten for DeadAfter, so that after a Redis outage every live
	// node has refreshed itself before anyone is taken for dead.
	beating time.Time
}

var _ presence.Store = (*Presence)(nil)

func newPresence(cfg Config, rdb *redis.Client, log *slog.Logger) *Presence {
	return &Presence{rdb: rdb, log: log, cfg: cfg, channel: cfg.Prefix + ":ctl",
		dirty: map[string]struct{}{}, wake: make(chan struct{}, 1), written: map[string]struct{}{}}
}

func (p *Presence) userKey(userID string) string { return p.cfg.Prefix + ":pres:u:" + userID }
func (p *Presence) usersKey(node string) string  { return p.cfg.Prefix + ":pres:n:" + node }
func (p *Presence) nodesKey() string             { return p.cfg.Prefix + ":nodes" }

// Bind implements presence.Store.
func (p *Presence) Bind(l presence.Local) { p.local = l }

// Changed implements presence.Store.
func (p *Presence) Changed(userID string) {
	p.mu.Lock()
	p.dirty[userID] = struct{}{}
	p.mu.Unlock()
	p.poke()
}

// Share implements presence.Store.
func (p *Presence) Share(n presence.Note) {
	p.mu.Lock()
	if len(p.notes) < maxPendingNotes {
		p.notes = append(p.notes, n)
	} else {
		p.dropped++
	}
	p.mu.Unlock()
	p.poke()
}

func (p *Presence) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Others implements presence.Store.
func (p *Presence) Others(ctx context.Context, userIDs []string) ([]presence.Remote, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	pipe := p.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(userIDs))
	for i, id := range userIDs {
		cmds[i] = pipe.HGetAll(ctx, p.userKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("presence", err)
	}
	out := make([]presence.Remote, len(userIDs))
	for i, c := range cmds {
		out[i].Parts, out[i].LastSeen = contributions(c.Val(), p.cfg.NodeID, p.log)
	}
	return out, nil
}

// contributions reads a user's hash: the nodes' contributions (but
// except's) and the lastSeen.
func contributions(h map[string]string, except string, log *slog.Logger) ([]presence.Contribution, time.Time) {
	var parts []presence.Contribution
	var lastSeen time.Time
	for k, v := range h {
		if k == "ls" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				lastSeen = time.UnixMilli(ms)
			}
			continue
		}
		node, ok := strings.CutPrefix(k, "n:")
		if !ok || node == except {
			continue
		}
		var c presence.Contribution
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			log.Warn("cluster: malformed presence contribution", "node", node, "err", err)
			continue
		}
		parts = append(parts, c)
	}
	return parts, lastSeen
}

// flatHash is a hash as the script encodes HGETALL: [field, value, ...],
// or {} when empty (Lua's cjson cannot tell an empty array from an object).
type flatHash map[string]string

func (f *flatHash) UnmarshalJSON(b []byte) error {
	*f = flatHash{}
	if bytes.Equal(bytes.TrimSpace(b), []byte("{}")) {
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a)%2 != 0 {
		return errors.New("cluster: a hash of odd length")
	}
	for i := 0; i < len(a); i += 2 {
		(*f)[a[i]] = a[i+1]
	}
	return nil
}

// presenceChange is the pr member of a control message.
type presenceChange struct {
	User   string   `json:"u"`
	Before flatHash `json:"o"`
	After  flatHash `json:"w"`
}

// decodeChange reads the pr member of a control message: the user's
// presence before and after the change.
func decodeChange(raw []byte, log *slog.Logger) (before, after presence.Presence, err error) {
	var ch presenceChange
	if err := json.Unmarshal(raw, &ch); err != nil {
		return before, after, err
	}
	if ch.User == "" {
		return before, after, errors.New("cluster: a presence change without a user")
	}
	parts, lastSeen := contributions(ch.Before, "", log)
	before = presence.Aggregate(ch.User, parts, lastSeen)
	parts, lastSeen = contributions(ch.After, "", log)
	after = presence.Aggregate(ch.User, parts, lastSeen)
	return before, after, nil
}

// handle is called by the control channel's reader with the presence
// parts of a message, in the order they were published.
func (p *Presence) handle(m controlMessage) {
	if p.local == nil {
		return
	}
	if m.Pres != nil {
		before, after, err := decodeChange(m.Pres, p.log)
		switch {
		case err != nil:
			p.log.Warn("cluster: malformed presence change", "err", err)
		case presence.Differs(before, after):
			p.local.PresenceChanged(after)
		}
	}
	if m.Rel != nil && m.Node != p.cfg.NodeID {
		var notes []presence.Note
		if err := json.Unmarshal(m.Rel, &notes); err != nil {
			p.log.Warn("cluster: malformed relationships", "err", err)
			return
		}
		for _, n := range notes {
			p.local.Noted(n)
		}
	}
}

// run writes this node's contributions as they change, heartbeats, and
// removes the contributions of dead nodes, until ctx is done. Before its
// first write it removes what a previous life of this node (same NodeID)
// left.
func (p *Presence) run(ctx context.Context) {
	if err := p.clean(ctx, p.cfg.NodeID); err != nil {
		p.log.Warn("cluster: presence of this node's previous run not removed", "err", err)
	}
	p.beat(ctx)
	tick := time.NewTicker(p.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			p.flush(ctx)
		case <-tick.C:
			p.beat(ctx)
			p.reap(ctx)
			p.flush(ctx)
		}
	}
}

// flush writes the contributions of the users marked changed and shares
// the pending relationships; what fails is written at the next heartbeat.
func (p *Presence) flush(ctx context.Context) {
	p.mu.Lock()
	var users map[string]struct{}
	if len(p.dirty) > 0 {
		users, p.dirty = p.dirty, map[string]struct{}{}
	}
	notes, dropped := p.notes, p.dropped
	p.notes, p.dropped = nil, 0
	p.mu.Unlock()
	if dropped > 0 {
		p.log.Warn("cluster: relationships not shared (too many pending)", "dropped", dropped)
	}
	if len(users) > 0 {
		if err := p.write(ctx, users); err != nil {
			p.log.Warn("cluster: presence not written; retrying at the next heartbeat", "users", len(users), "err", err)
			p.mu.Lock()
			for u := range users {
				p.dirty[u] = struct{}{}
			}
			p.mu.Unlock()
		}
	}
	for len(notes) > 0 {
		n := min(len(notes), 64)
		if err := p.share(ctx, notes[:n]); err != nil {
			p.log.Warn("cluster: relationships not shared", "notes", len(notes), "err", err)
			break
		}
		notes = notes[n:]
	}
}

func (p *Presence) share(ctx context.Context, notes []presence.Note) error {
	raw, err := json.Marshal(notes)
	if err != nil {
		return err
	}
	b, err := json.Marshal(controlMessage{Node: p.cfg.NodeID, Rel: raw})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	return p.rdb.Publish(ctx, p.channel, b).Err()
}

// write sets this node's contribution of each user as it is now.
func (p *Presence) write(ctx context.Context, users map[string]struct{}) error {
	ids := make([]string, 0, len(users))
	for u := range users {
		ids = append(ids, u)
	}
	ttl := strconv.Itoa(int(lastSeenTTL / time.Second))
	field := "n:" + p.cfg.NodeID
	mine := p.usersKey(p.cfg.NodeID)
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 256)]
		ids = ids[len(batch):]
		err := p.pipeline(ctx, func(pipe redis.Pipeliner) {
			for _, u := range batch {
				c := p.local.Contribution(u)
				if c.Conns == 0 {
					contributeScript.EvalSha(ctx, pipe, []string{p.userKey(u)}, field, "", p.channel, p.cfg.NodeID, u, ttl)
					pipe.SRem(ctx, mine, u)
					delete(p.written, u)
					continue
				}
				v, _ := json.Marshal(c) // plain fields always marshal
				pipe.SAdd(ctx, mine, u)
				contributeScript.EvalSha(ctx, pipe, []string{p.userKey(u)}, field, string(v), p.channel, p.cfg.NodeID, u, ttl)
				p.written[u] = struct{}{}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// pipeline runs fill's commands in one round trip, loading the script first
// when Redis does not have it (a new or restarted Redis).
func (p *Presence) pipeline(ctx context.Context, fill func(redis.Pipeliner)) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		pipe := p.rdb.Pipeline()
		fill(pipe)
		_, err := pipe.Exec(ctx)
		if err == nil || attempt > 0 || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err != nil {
				return unavailable("presence", err)
			}
			return nil
		}
		if err := contributeScript.Load(ctx, p.rdb).Err(); err != nil {
			return unavailable("presence", err)
		}
	}
}

// beat refreshes this node's liveness. When the node was not listed any
// more (taken for dead during a pause or a partition, its contributions
// removed), it writes all of them again.
func (p *Presence) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	added, err := beatScript.Run(ctx, p.rdb, []string{p.nodesKey()}, p.cfg.NodeID).Int()
	if err != nil {
		p.log.Warn("cluster: heartbeat not written", "err", err)
		p.beating = time.Time{}
		return
	}
	if p.beating.IsZero() {
		p.beating = time.Now()
	}
	if added == 1 && len(p.written) > 0 {
		p.log.Warn("cluster: this node was taken for dead; writing its presence again", "users", len(p.written))
		p.mu.Lock()
		for u := range p.written {
			p.dirty[u] = struct{}{}
		}
		p.mu.Unlock()
	}
}

// reap claims the nodes whose heartbeat is older than DeadAfter and
// removes their contributions, which makes their users' presence change on
// every node.
func (p *Presence) reap(ctx context.Context) {
	if p.beating.IsZero() || time.Since(p.beating) < p.cfg.DeadAfter {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	won, err := claimScript.Run(cctx, p.rdb, []string{p.nodesKey()}, p.cfg.DeadAfter.Milliseconds(), p.cfg.NodeID).StringSlice()
	cancel()
	if err != nil {
		p.log.Warn("cluster: dead nodes not looked for", "err", err)
		return
	}
	for _, id := range won {
		if err := p.clean(ctx, id); err != nil {
			p.log.Warn("cluster: presence of a dead node not removed; it will be claimed again", "dead", id, "err", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		err := p.rdb.ZRem(cctx, p.nodesKey(), id).Err()
		cancel()
		if err != nil {
			p.log.Warn("cluster: dead node not unlisted", "dead", id, "err", err)
			continue
		}
		p.log.Info("cluster: a node stopped heartbeating; its users' presence was removed", "dead", id)
	}
}

// clean removes node's contributions and its set of users.
func (p *Presence) clean(ctx context.Context, node string) error {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	users, err := p.rdb.SMembers(cctx, p.usersKey(node)).Result()
	cancel()
	if err != nil {
		return fmt.Errorf("cluster: users of node %s: %w", node, err)
	}
	ttl := strconv.Itoa(int(lastSeenTTL / time.Second))
	field := "n:" + node
	for len(users) > 0 {
		batch := users[:min(len(users), 256)]
		users = users[len(batch):]
		if err := p.pipeline(ctx, func(pipe redis.Pipeliner) {
			for _, u := range batch {
				contributeScript.EvalSha(ctx, pipe, []string{p.userKey(u)}, field, "", p.channel, p.cfg.NodeID, u, ttl)
			}
		}); err != nil {
			return err
		}
	}
	cctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	return p.rdb.Del(cctx, p.usersKey(node)).Err()
}

// leave removes this node's contributions and unlists it: the goodbye of a
// node that stops in order (a node that dies is cleaned by the others).
func (p *Presence) leave(ctx context.Context) {
	if err := p.clean(ctx, p.cfg.NodeID); err != nil {
		p.log.Warn("cluster: presence not removed at shutdown; the other nodes will", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_ = p.rdb.ZRem(ctx, p.nodesKey(), p.cfg.NodeID).Err()
}
