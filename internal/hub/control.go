package hub

// This file holds what the Server API needs of the hub beyond fan-out:
// counting a thread's listeners, detaching all of them with a last push, and
// closing every connection of a user.

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

// DetachThread delivers p to every listener of threadID and detaches them
// all, in one step under the thread's lock: no push of the thread can follow
// p. p is not part of the thread's history. It returns how many listeners
// took p; those that could not are closed as slow.
func (h *Hub) DetachThread(threadID string, p *Push) int {
	s := h.shard(threadID)
	s.mu.Lock()
	t := s.threads[threadID]
	if t == nil {
		s.mu.Unlock()
		return 0
	}
	listeners := t.listeners
	t.listeners = map[Conn]bool{}
	slow, n := h.fanOutLocked(&thread{listeners: listeners}, p, nil) // removes the slow ones from listeners
	s.mu.Unlock()
	h.cfg.Metrics.Delivered(n)

	h.connsMu.Lock()
	for c := range listeners {
		if st := h.conns[c]; st != nil {
			delete(st.threads, threadID)
		}
	}
	h.connsMu.Unlock()
	h.closeSlow(slow)
	return len(listeners)
}

// DisconnectUser closes every connection of userID on this node with reason
// and forgets them; it returns how many there were.
func (h *Hub) DisconnectUser(userID string, reason Reason) int {
	h.connsMu.Lock()
	conns := make([]Conn, 0, len(h.users[userID]))
	for c := range h.users[userID] {
		conns = append(conns, c)
	}
	h.connsMu.Unlock()
	for _, c := range conns {
		h.Unregister(c)
		c.Close(reason)
	}
	return len(conns)
}
