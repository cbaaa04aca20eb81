package cluster

import (
	"context"
	"io"
	"log/slog"

	"github.com/ecbridge/ecb/internal/presence"
)

// KeysOf returns the meta and stream keys of a thread (tests).
func KeysOf(cfg Config, threadID string) (meta, stream string) {
	cfg = cfg.withDefaults()
	b := newBroker(cfg, nil, nil)
	p := b.part(threadID)
	return p.key("m", threadID), p.key("s", threadID)
}

// SilenceProbes unsubscribes every partition from its probe channel, as a
// subscription that silently stopped delivering would behave (tests).
func SilenceProbes(n *Node) {
	for _, p := range n.Broker.parts {
		_ = p.ps.Unsubscribe(context.Background(), p.probe)
	}
}

// DecodeAccessEntry decodes an AccessStore value (tests).
var DecodeAccessEntry = decodeEntry

// Crash stops a node as a kill -9 would: no goodbye, its presence stays in
// Redis until another node finds it dead (tests).
func Crash(n *Node) { n.stop(false) }

// DecodePresenceChange reads a presence change as the control channel
// carries it (tests).
func DecodePresenceChange(raw []byte) (before, after presence.Presence, err error) {
	return decodeChange(raw, slog.New(slog.NewTextHandler(io.Discard, nil)))
}
