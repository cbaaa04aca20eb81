package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/periodic"
)

// ErrPeerGone is PeerURL's answer for a tag whose node is not alive: it
// never registered, or its entry was not renewed within DeadAfter.
var ErrPeerGone = errors.New("cluster: no live node has that tag")

// TagLen is the length of a node tag.
const TagLen = 8

// NodeTag returns the tag of the node named id: 8 URL-safe characters that
// the ids of its sessions and streams start with, so that any node can tell
// which node holds one. A node restarted under the same name has the same
// tag (and holds none of its previous run's sessions).
func NodeTag(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

// TagOf returns the node tag an id made by a cluster node starts with
// ("<tag>.<random>"), or "" for an id without one (a node alone).
func TagOf(id string) string {
	tag, _, ok := strings.Cut(id, ".")
	if !ok || len(tag) != TagLen {
		return ""
	}
	return tag
}

// peers is the registry of the nodes' advertised URLs: each node keeps
// <prefix>:peer:<tag> = its URL, PX DeadAfter, renewed every Heartbeat, and
// deletes it when it stops in order. Lookups are cached for a Heartbeat (at
// least a second) so that a forwarded poll costs no Redis round trip; a
// stale hit costs a failed dial, which the forwarder answers as a gone node.
type peers struct {
	cfg Config
	rdb *redis.Client
	log *slog.Logger
	tag string

	mu    sync.Mutex // guards url and cache; nothing is called under it
	url   string
	cache map[string]peerEntry
}

type peerEntry struct {
	url   string // "" when the node is gone
	until time.Time
}

func newPeers(cfg Config, rdb *redis.Client, log *slog.Logger) *peers {
	return &peers{cfg: cfg, rdb: rdb, log: log, tag: NodeTag(cfg.NodeID), cache: map[string]peerEntry{}}
}

func (p *peers) key(tag string) string { return p.cfg.Prefix + ":peer:" + tag }

// advertise sets the URL the other nodes reach this one at.
func (p *peers) advertise(url string) {
	p.mu.Lock()
	p.url = url
	p.mu.Unlock()
}

func (p *peers) run(ctx context.Context) {
	beat := func(time.Time) {
		p.mu.Lock()
		url := p.url
		p.mu.Unlock()
		if url == "" {
			return // not advertised: this node forwards, but cannot be forwarded to
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		if err := p.rdb.Set(cctx, p.key(p.tag), url, p.cfg.DeadAfter).Err(); err != nil && ctx.Err() == nil {
			p.log.Warn("cluster: advertised URL not renewed", "err", err)
		}
	}
	beat(time.Now())
	periodic.Run(ctx, p.cfg.Heartbeat, beat)
}

// leave removes this node's entry (an orderly stop).
func (p *peers) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_ = p.rdb.Del(ctx, p.key(p.tag)).Err()
}

// lookup returns the URL of the node with tag, or ErrPeerGone.
func (p *peers) lookup(ctx context.Context, tag string) (string, error) {
	now := time.Now()
	p.mu.Lock()
	e, ok := p.cache[tag]
	p.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.url == "" {
			return "", ErrPeerGone
		}
		return e.url, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	url, err := p.rdb.Get(ctx, p.key(tag)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		url = ""
	case err != nil:
		return "", fmt.Errorf("cluster: look up node %s: %w", tag, err)
	}
	p.mu.Lock()
	if len(p.cache) > 1024 { // tags of nodes long gone; cheap to forget
		clear(p.cache)
	}
	p.cache[tag] = peerEntry{url: url, until: now.Add(max(p.cfg.Heartbeat, time.Second))}
	p.mu.Unlock()
	if url == "" {
		return "", ErrPeerGone
	}
	return url, nil
}

// gone takes the node with tag for gone until its entry would have expired
// (it did not answer), so that its sessions' next requests are answered at
// once instead of each waiting for a dial.
func (p *peers) gone(tag string) {
	p.mu.Lock()
	p.cache[tag] = peerEntry{until: time.Now().Add(p.cfg.DeadAfter)}
	p.mu.Unlock()
}
