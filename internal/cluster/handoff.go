package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/sse"
)

// StreamHandoff keeps the SSE streams of a node that shuts down in Redis,
// <prefix>:sse:<streamId> = the record (JSON), PX the resume window, for
// the node that the client reconnects to (sse.Handoff).
type StreamHandoff struct {
	rdb    *redis.Client
	prefix string
	// timeout bounds each call
	timeout time.Duration
}

var _ sse.Handoff = (*StreamHandoff)(nil)

// StreamHandoff returns the node's sse.Handoff.
func (n *Node) StreamHandoff() *StreamHandoff {
	return &StreamHandoff{rdb: n.rdb, prefix: n.cfg.Prefix, timeout: n.cfg.Timeout}
}

func (h *StreamHandoff) key(streamID string) string { return h.prefix + ":sse:" + streamID }

// Save implements sse.Handoff.
func (h *StreamHandoff) Save(ctx context.Context, streamID string, rec sse.HandoffRecord, ttl time.Duration) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("cluster: encode stream %s: %w", streamID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if err := h.rdb.Set(ctx, h.key(streamID), raw, ttl).Err(); err != nil {
		return fmt.Errorf("cluster: hand stream over: %w", err)
	}
	return nil
}

// takeScript deletes and returns KEYS[1] if its "u" is ARGV[1], so that
// one node only picks a stream up, and only for its user.
var takeScript = redis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local ok, rec = pcall(cjson.decode, raw)
if not ok or rec.u ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return raw
`)

// Take implements sse.Handoff.
func (h *StreamHandoff) Take(ctx context.Context, streamID, userID string) (sse.HandoffRecord, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	raw, err := takeScript.Run(ctx, h.rdb, []string{h.key(streamID)}, userID).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return sse.HandoffRecord{}, false, nil
	case err != nil:
		return sse.HandoffRecord{}, false, fmt.Errorf("cluster: take stream %s: %w", streamID, err)
	}
	var rec sse.HandoffRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return sse.HandoffRecord{}, false, fmt.Errorf("cluster: decode stream %s: %w", streamID, err)
	}
	return rec, true, nil
}
