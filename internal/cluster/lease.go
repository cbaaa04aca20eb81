package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Lease makes one node of the cluster the owner of something (the
// support engine's state): the holder's token sits in a key with a TTL that
// the holder renews; when it stops renewing (dead, cut off), the key
// expires and another node takes it. Each acquisition has a token of its
// own (the node's id and a random part), so a node that lost the lease and
// took it again is not taken for its former self.
//
// The state the owner keeps is written with WriteFenced: one Lua script
// that writes only while the lease holds the writer's token, so a stale
// owner (its lease expired while it was paused) cannot overwrite what the
// new owner wrote. The lease and its state share a hash tag, so the script
// touches one slot of a Redis Cluster.
//
//	<prefix>:{<name>}:lease  string: the holder's token; PX ttl
//	<prefix>:{<name>}:state  hash {v: version, d: blob}
type Lease struct {
	rdb   *redis.Client
	key   string
	state string
	node  string
	ttl   time.Duration

	mu    sync.Mutex // guards token; never held across a Redis call
	token string     // the current acquisition's, "" when not held
}

// ErrNotHolder is returned by WriteFenced when the lease is not the writer's.
var ErrNotHolder = errors.New("cluster: the lease is held by another node")

// NewLease returns the lease name of the cluster under prefix for node.
// Acquire and Release are for one goroutine at a time (the owner's loop);
// WriteFenced, Token and Holder may be called from any goroutine.
func NewLease(rdb *redis.Client, prefix, name, node string, ttl time.Duration) *Lease {
	base := fmt.Sprintf("%s:{%s}:", prefix, name)
	return &Lease{rdb: rdb, key: base + "lease", state: base + "state", node: node, ttl: ttl}
}

// Keys returns the lease's keys (for tests and clean-up).
func (l *Lease) Keys() (lease, state string) { return l.key, l.state }

// Token returns the token of the current acquisition ("" when not held).
func (l *Lease) Token() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

func (l *Lease) setToken(t string) {
	l.mu.Lock()
	l.token = t
	l.mu.Unlock()
}

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

var writeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
redis.call('HSET', KEYS[2], 'd', ARGV[2])
return v`)

// Acquire renews the lease when it is held, else tries to take it. It
// reports whether this node holds it now; when a renewal finds it gone,
// the lease is lost (held reports false) and a new acquisition is tried.
func (l *Lease) Acquire(ctx context.Context) (held bool, err error) {
	if token := l.Token(); token != "" {
		n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, token, l.ttl.Milliseconds()).Int()
		if err != nil {
			return false, fmt.Errorf("cluster: renew lease %s: %w", l.key, err)
		}
		if n == 1 {
			return true, nil
		}
		l.setToken("")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	token := l.node + "/" + hex.EncodeToString(b[:])
	ok, err := l.rdb.SetNX(ctx, l.key, token, l.ttl).Result()
	if err != nil {
		return false, fmt.Errorf("cluster: take lease %s: %w", l.key, err)
	}
	if ok {
		l.setToken(token)
	}
	return ok, nil
}

// Release gives the lease up, when this node holds it.
func (l *Lease) Release(ctx context.Context) error {
	token := l.Token()
	if token == "" {
		return nil
	}
	l.setToken("")
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, token).Err(); err != nil {
		return fmt.Errorf("cluster: release lease %s: %w", l.key, err)
	}
	return nil
}

// Forget drops the current acquisition without telling Redis (the owner
// gave up, e.g. when a fenced write was refused).
func (l *Lease) Forget() { l.setToken("") }

// Holder returns the node holding the lease, "" when nobody does.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	token, err := l.rdb.Get(ctx, l.key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: lease %s: %w", l.key, err)
	}
	node, _, _ := strings.Cut(token, "/")
	return node, nil
}

// WriteFenced stores blob as the lease's state, when this acquisition
// still holds the lease (ErrNotHolder otherwise), and returns its version
// (one more than the previous write's).
func (l *Lease) WriteFenced(ctx context.Context, blob []byte) (uint64, error) {
	token := l.Token()
	if token == "" {
		return 0, ErrNotHolder
	}
	v, err := writeScript.Run(ctx, l.rdb, []string{l.key, l.state}, token, blob).Int64()
	if err != nil {
		return 0, fmt.Errorf("cluster: write state %s: %w", l.state, err)
	}
	if v < 0 {
		return 0, ErrNotHolder
	}
	return uint64(v), nil
}

// ReadState returns the state last written and its version (0 and nil
// when none was).
func (l *Lease) ReadState(ctx context.Context) ([]byte, uint64, error) {
	res, err := l.rdb.HMGet(ctx, l.state, "v", "d").Result()
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: read state %s: %w", l.state, err)
	}
	vs, _ := res[0].(string)
	d, _ := res[1].(string)
	if vs == "" {
		return nil, 0, nil
	}
	var v uint64
	if _, err := fmt.Sscan(vs, &v); err != nil {
		return nil, 0, fmt.Errorf("cluster: state %s: version %q: %w", l.state, vs, err)
	}
	return []byte(d), v, nil
}
