package hub

import (
	"context"
	"fmt"
)

// This file holds the effects that reach connections on every node through
// the Controller (a push to a user, detaching a user or a whole thread,
// disconnecting a user) and HandleCommand, which applies them on this node.

// Each of them applies its effect on this node at once and returns how many
// of this node's connections it reached (what the Server API reports), then
// sends it to the other nodes through the Controller; the error says that
// the other nodes could not be reached.

// SendToUser delivers a push that belongs to no thread history to every
// connection of userID on every node but skip (nil for none).
func (h *Hub) SendToUser(userID string, p *Push, skip Conn) (int, error) {
	return h.send(Command{UserID: userID, Push: p, Skip: h.ConnID(skip)})
}

// UserPush is one push to the connections of one user (SendToUsers).
type UserPush struct {
	UserID string
	Push   *Push
}

// SendToUsers is SendToUser for several users at once: one deadline for
// all of them and, with a BatchController, one round trip to the other
// nodes instead of one per user, so that a message that mentions twenty
// users does not wait for twenty.
func (h *Hub) SendToUsers(pushes []UserPush, skip Conn) (int, error) {
	if len(pushes) == 0 {
		return 0, nil
	}
	skipID := h.ConnID(skip)
	cmds := make([]Command, len(pushes))
	for i, up := range pushes {
		cmds[i] = Command{UserID: up.UserID, Push: up.Push, Skip: skipID}
	}
	return h.send(cmds...)
}

// DetachUser stops every connection of userID, on every node, listening to
// threadID.
func (h *Hub) DetachUser(threadID, userID string) (int, error) {
	return h.send(Command{UserID: userID, ThreadID: threadID, Detach: true})
}

// DetachThread delivers p to every listener of threadID on every node and
// detaches them all, in one step under the thread's lock on each node: no
// push of the thread can follow p there. p is not part of the history.
func (h *Hub) DetachThread(threadID string, p *Push) (int, error) {
	return h.send(Command{ThreadID: threadID, Push: p, Detach: true})
}

// DisconnectUser closes every connection of userID on every node with reason.
func (h *Hub) DisconnectUser(userID string, reason Reason) (int, error) {
	return h.send(Command{UserID: userID, Disconnect: reason})
}

// send applies cmds on this node, then sends them to the other nodes, in
// order, under one deadline: in one SendAll where the Controller has it.
func (h *Hub) send(cmds ...Command) (int, error) {
	n := 0
	for _, cmd := range cmds {
		n += h.apply(cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	if b, ok := h.ctl.(BatchController); ok && len(cmds) > 1 {
		err = b.SendAll(ctx, cmds)
	} else {
		for _, cmd := range cmds {
			if err = h.ctl.Send(ctx, cmd); err != nil {
				break
			}
		}
	}
	if err != nil {
		return n, fmt.Errorf("hub: command to the other nodes: %w", err)
	}
	return n, nil
}

// Listeners returns how many connections listen to threadID on this node.
func (h *Hub) Listeners(threadID string) int {
	s := h.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.threads[threadID]; t != nil {
		return len(t.listeners)
	}
	return 0
}

// HandleCommand implements Sink: it applies a command another node sent.
func (h *Hub) HandleCommand(cmd Command) { h.apply(cmd) }

// apply applies cmd to this node's connections and returns how many it
// selected (for a push: how many took it). It is called without any hub lock
// held, and closes what it must itself.
func (h *Hub) apply(cmd Command) int {
	if cmd.UserID == "" {
		return h.detachThread(cmd)
	}
	h.connsMu.Lock()
	user := h.users[cmd.UserID]
	conns := make([]Conn, 0, user.Len())
	var targets, detached []Conn
	skip := h.localSeq(cmd.Skip)
	for c := range user.All() {
		st := h.conns[c]
		if st == nil {
			continue
		}
		conns = append(conns, c)
		if cmd.Detach && dropThreadLocked(st, c, cmd.ThreadID) {
			detached = append(detached, c)
		}
		if cmd.Push != nil && st.seq != skip && (!cmd.Push.AgentsOnly || st.agents) {
			targets = append(targets, c)
		}
	}
	h.connsMu.Unlock()
	for _, c := range detached {
		h.removeListener(cmd.ThreadID, c)
	}
	var slow []Conn
	n := 0
	for _, c := range targets {
		if c.Deliver(cmd.Push) {
			n++
		} else {
			slow = append(slow, c)
		}
	}
	h.cfg.Metrics.Delivered(n)
	h.closeConns(slow, ReasonSlow)
	if cmd.Disconnect != "" {
		h.closeConns(conns, cmd.Disconnect)
	}
	switch {
	case cmd.Push != nil:
		return n
	case cmd.Detach:
		return len(detached)
	}
	return len(conns)
}

// detachThread applies a command on the listeners of a thread and returns
// how many there were.
func (h *Hub) detachThread(cmd Command) int {
	s := h.shard(cmd.ThreadID)
	s.mu.Lock()
	t := s.threads[cmd.ThreadID]
	if t == nil || !t.synced {
		// A thread still subscribing has delivered nothing yet; it will be
		// refused by the thread's state when it asks the backend.
		s.mu.Unlock()
		return 0
	}
	var slow []Conn
	delivered := 0
	listeners := t.listeners
	if cmd.Push != nil {
		slow, delivered = h.fanOutLocked(&thread{listeners: listeners, synced: true}, cmd.Push)
	}
	if cmd.Detach {
		t.listeners = map[Conn]*listener{}
		delete(s.threads, cmd.ThreadID)
	}
	s.mu.Unlock()
	if cmd.Detach {
		h.connsMu.Lock()
		for c := range listeners {
			if st := h.conns[c]; st != nil {
				dropThreadLocked(st, c, cmd.ThreadID)
			}
		}
		h.connsMu.Unlock()
		h.unsubscribe(cmd.ThreadID)
	}
	h.cfg.Metrics.Delivered(delivered)
	h.closeConns(slow, ReasonSlow)
	return len(listeners)
}
