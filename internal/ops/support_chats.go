package ops

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ecbridge/ecb/internal/support"
)

// The live support chats across nodes: every node must know them, since
// the node that stores a chat's message posts its message.created callback
// (messageCallback). The owner notes a chat when it starts and forgets it
// when it ends (shareChat: a fenced write to Redis that also tells every
// node), and replaces the whole set with the live chats of the state it
// restores when it takes over (shareRestored). Each node follows the
// changes in order (chatChanged, on the share's reader) and reads the whole
// set (reloadChats, on the loop) when it starts, when a change skips a
// version or replaces the set, and when the version in Redis differs from
// its own (checked every Interval: a change missed while the subscription
// was down). s.supportChats is the node's copy.
//
// Concurrency: chatsMu guards chatsVer and orders the updates of
// s.supportChats (stores and deletes of a sync.Map, nothing called out);
// messageCallback reads the map without it.

// shareChat tells every node that r's thread is a live support chat (note)
// or no longer one; on the owner, from the engine's events.
func (c *clusterEngine) shareChat(r support.Request, note bool) {
	var req []byte
	if note {
		b, err := json.Marshal(r)
		if err != nil {
			c.s.log.Error("support: chat not shared", "request", r.ID, "err", err)
			return
		}
		req = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.callTimeout)
	defer cancel()
	if err := c.sc.NoteChat(ctx, r.ThreadID, req); err != nil {
		c.s.log.Warn("support: chat not shared with the other nodes", "request", r.ID, "note", note, "err", err)
	}
}

// liveChats are the support chats of a saved state: its requests with a thread.
func liveChats(snap support.Snapshot) map[string][]byte {
	out := map[string][]byte{}
	for _, rs := range snap.Requests {
		if rs.Request.ThreadID == "" {
			continue
		}
		if b, err := json.Marshal(rs.Request); err == nil {
			out[rs.Request.ThreadID] = b
		}
	}
	return out
}

// shareRestored makes the restored state's live chats the cluster's (a new
// owner, before its engine runs: its events' notes come after).
func (c *clusterEngine) shareRestored(ctx context.Context, snap support.Snapshot) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	return c.sc.ResetChats(ctx, liveChats(snap))
}

// chatChanged applies a change told by the owner, in order; a change that
// skips a version, or a reset, makes the loop read the whole set.
func (c *clusterEngine) chatChanged(version uint64, thread string, req []byte, reset bool) {
	c.chatsMu.Lock()
	defer c.chatsMu.Unlock()
	switch {
	case version <= c.chatsVer:
		return // in the set read already
	case reset || version != c.chatsVer+1:
		select {
		case c.reload <- struct{}{}:
		default:
		}
		return
	}
	c.chatsVer = version
	if req == nil {
		c.s.supportChats.Delete(thread)
		return
	}
	var r support.Request
	if err := json.Unmarshal(req, &r); err != nil {
		c.s.log.Warn("support: malformed chat", "thread", thread, "err", err)
		return
	}
	c.s.supportChats.Store(thread, r)
}

// reloadChats reads the whole set of live chats and makes it this node's,
// unless changes newer than it were applied meanwhile; force takes it
// whatever its version (Redis lost the chats: their version went back).
func (c *clusterEngine) reloadChats(ctx context.Context, force bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	chats, ver, err := c.sc.Chats(ctx)
	if err != nil {
		return err
	}
	live := make(map[string]support.Request, len(chats))
	for t, b := range chats {
		var r support.Request
		if err := json.Unmarshal(b, &r); err != nil {
			c.s.log.Warn("support: malformed chat", "thread", t, "err", err)
			continue
		}
		live[t] = r
	}
	c.chatsMu.Lock()
	defer c.chatsMu.Unlock()
	defer c.chatsOnce.Do(func() { close(c.chatsReady) })
	if ver < c.chatsVer && !force {
		return nil // newer changes were applied meanwhile
	}
	c.chatsVer = ver
	for t, r := range live {
		c.s.supportChats.Store(t, r)
	}
	c.s.supportChats.Range(func(k, _ any) bool {
		if _, ok := live[k.(string)]; !ok {
			c.s.supportChats.Delete(k)
		}
		return true
	})
	return nil
}

// syncChats reads the set again when its version in Redis is not this
// node's (the loop's, every Interval).
func (c *clusterEngine) syncChats(ctx context.Context) {
	vctx, cancel := context.WithTimeout(ctx, c.sc.Interval())
	ver, err := c.sc.ChatsVersion(vctx)
	cancel()
	if err != nil {
		c.s.log.Warn("support: chats version not read", "err", err)
		return
	}
	c.chatsMu.Lock()
	mine := c.chatsVer
	c.chatsMu.Unlock()
	if ver == mine && c.chatsLoaded() {
		return
	}
	if err := c.reloadChats(ctx, ver < mine); err != nil {
		c.s.log.Warn("support: chats not read", "err", err)
	}
}

func (c *clusterEngine) chatsLoaded() bool {
	select {
	case <-c.chatsReady:
		return true
	default:
		return false
	}
}

// awaitChats waits, a node that just started, until it has read the live
// chats once (at most 3 intervals, or until ctx ends): a message stored
// before would find no chat.
func (c *clusterEngine) awaitChats(ctx context.Context) {
	if c.chatsLoaded() {
		return
	}
	t := time.NewTimer(3 * c.sc.Interval())
	defer t.Stop()
	select {
	case <-c.chatsReady:
	case <-t.C:
	case <-ctx.Done():
	}
}
