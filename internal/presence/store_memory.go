package presence

import (
	"context"
	"strings"
	"sync"
	"time"
)

// memoryStore is the Store of a node alone: a user's presence is this
// node's contribution.
//
// Changes are delivered in the order they were found without a lock held:
// the first goroutine that finds the queue idle drains it, and a change
// found meanwhile (by another goroutine, or by a delivery that cut a slow
// connection and so re-entered Changed) is queued for that drainer.
type memoryStore struct {
	local Local

	mu       sync.Mutex       // then Local's locks (Contribution is called under mu)
	online   map[string]shown // the users online here, as last pushed (shownAs)
	lastSeen map[string]time.Time
	queue    []Presence
	draining bool
}

// NewMemoryStore returns the in-memory Store of a node alone.
func NewMemoryStore() Store {
	return &memoryStore{online: map[string]shown{}, lastSeen: map[string]time.Time{}}
}

// shown is what a push of a user's presence said, what a change is told
// against (Differs): the show alone when there is no status (the usual
// case, a constant: nothing allocated), else show, NUL, status. One string
// rather than two in the map entry every online user has.
type shown string

func shownAs(p Presence) shown {
	if p.Status == "" {
		return shown(p.Show)
	}
	return shown(p.Show + "\x00" + p.Status)
}

// presence returns what s said.
func (s shown) presence() Presence {
	show, status, _ := strings.Cut(string(s), "\x00")
	return Presence{Show: show, Status: status}
}

func (m *memoryStore) Bind(l Local) { m.local = l }

func (m *memoryStore) Share(Note) {}

func (m *memoryStore) Others(_ context.Context, userIDs []string) ([]Remote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Remote, len(userIDs))
	for i, id := range userIDs {
		out[i].LastSeen = m.lastSeen[id]
	}
	return out, nil
}

func (m *memoryStore) Changed(userID string) {
	m.mu.Lock()
	p := Aggregate(userID, []Contribution{m.local.Contribution(userID)}, time.Time{})
	prev, was := m.online[userID]
	switch {
	case p.Show != Offline:
		delete(m.lastSeen, userID)
		m.online[userID] = shownAs(p)
		if was && !Differs(prev.presence(), p) {
			m.mu.Unlock()
			return
		}
	case was:
		now := time.Now().UTC()
		delete(m.online, userID)
		m.lastSeen[userID] = now
		p.LastSeen = &now
	default:
		m.mu.Unlock()
		return
	}
	m.queue = append(m.queue, p)
	if m.draining {
		m.mu.Unlock()
		return
	}
	m.draining = true
	for len(m.queue) > 0 {
		batch := m.queue
		m.queue = nil
		m.mu.Unlock()
		for _, p := range batch {
			m.local.PresenceChanged(p)
		}
		m.mu.Lock()
	}
	m.draining = false
	m.mu.Unlock()
}
