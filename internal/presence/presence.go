// Package presence owns who is online on this node and what they show
// (available, away, dnd, xa, chat; offline when no connection is left), and
// who may see it: the users who have the user among their contacts (as the
// backend last returned them) and the listeners of the threads the user is a
// member of. Presence is never stored by the backend.
//
// A user's presence is the most available one of their connections, in the
// order chat > available > dnd > away > xa > offline. A connection starts
// available. The Service is a hub.ConnObserver: it learns of connections
// coming and going (including those cut by a ping timeout) from the hub.
//
// All methods are safe for concurrent use; pushes go out after the lock is
// released.
package presence

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
)

// The values of show.
const (
	Chat      = "chat"
	Available = "available"
	DND       = "dnd"
	Away      = "away"
	XA        = "xa"
	Offline   = "offline"
)

var rank = map[string]int{Offline: 0, XA: 1, Away: 2, DND: 3, Available: 4, Chat: 5}

// Valid reports whether show may be set by a client (offline may not: it
// follows from having no connection).
func Valid(show string) bool { return show != Offline && rank[show] > 0 }

// Presence is what a presence push and getPresence carry.
type Presence struct {
	UserID   string     `json:"userId"`
	Show     string     `json:"show"`
	Status   string     `json:"status,omitempty"`
	LastSeen *time.Time `json:"lastSeen,omitempty"` // when the user went offline
}

// EventPresence is the push's event name.
const EventPresence = "presence"

type connState struct {
	userID string
	show   string
	status string
	since  time.Time
	// away: a connection kept for a resume (an SSE stream between two
	// responses) that nobody reads now; it does not make its user online.
	away bool
}

// Service tracks presence on one node.
type Service struct {
	hub *hub.Hub

	mu         sync.Mutex
	conns      map[hub.Conn]*connState
	byUser     map[string]map[hub.Conn]*connState
	current    map[string]Presence            // last presence pushed per user
	lastSeen   map[string]time.Time           // when users went offline
	contactsOf map[string]map[string]struct{} // watcher → contacts
	watchers   map[string]map[string]struct{} // user → who has them as contact
	membersOf  map[string][]string            // thread → members
	threadsOf  map[string]map[string]struct{} // user → threads they are a member of
}

// New returns a Service; call SetHub before the hub registers connections.
func New() *Service {
	return &Service{
		conns:      map[hub.Conn]*connState{},
		byUser:     map[string]map[hub.Conn]*connState{},
		current:    map[string]Presence{},
		lastSeen:   map[string]time.Time{},
		contactsOf: map[string]map[string]struct{}{},
		watchers:   map[string]map[string]struct{}{},
		membersOf:  map[string][]string{},
		threadsOf:  map[string]map[string]struct{}{},
	}
}

// SetHub gives the service the hub it pushes through (the hub is built with
// the service as its observer, hence the two steps).
func (s *Service) SetHub(h *hub.Hub) { s.hub = h }

// ConnRegistered implements hub.ConnObserver.
func (s *Service) ConnRegistered(c hub.Conn, userID string) {
	s.mu.Lock()
	st := &connState{userID: userID, show: Available, since: time.Now()}
	s.conns[c] = st
	if s.byUser[userID] == nil {
		s.byUser[userID] = map[hub.Conn]*connState{}
	}
	s.byUser[userID][c] = st
	p, changed := s.recomputeLocked(userID)
	s.mu.Unlock()
	if changed {
		s.push(p)
	}
}

// ConnUnregistered implements hub.ConnObserver.
func (s *Service) ConnUnregistered(c hub.Conn, userID string) {
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.byUser[userID], c)
	if len(s.byUser[userID]) == 0 {
		delete(s.byUser, userID)
	}
	p, changed := s.recomputeLocked(userID)
	s.mu.Unlock()
	if changed {
		s.push(p)
	}
}

// SetReading tells whether someone reads connection c now. An SSE stream
// stays registered for its resume window after its response ends, so that
// a reconnect loses nothing; while nobody reads it, it does not count for
// its user's presence, who turns offline at once when it was their last.
func (s *Service) SetReading(c hub.Conn, reading bool) {
	s.mu.Lock()
	st := s.conns[c]
	if st == nil || st.away == !reading {
		s.mu.Unlock()
		return
	}
	st.away = !reading
	p, changed := s.recomputeLocked(st.userID)
	s.mu.Unlock()
	if changed {
		s.push(p)
	}
}

// Set changes the show and status of one connection of its user.
func (s *Service) Set(c hub.Conn, show, status string) Presence {
	s.mu.Lock()
	st := s.conns[c]
	if st == nil {
		s.mu.Unlock()
		return Presence{Show: Offline}
	}
	st.show, st.status, st.since = show, status, time.Now()
	p, changed := s.recomputeLocked(st.userID)
	s.mu.Unlock()
	if changed {
		s.push(p)
	}
	return p
}

// recomputeLocked derives a user's presence from their connections and
// reports whether it differs from the last one pushed. current holds the
// online users only.
func (s *Service) recomputeLocked(userID string) (Presence, bool) {
	var best *connState
	for _, st := range s.byUser[userID] {
		if st.away {
			continue
		}
		if best == nil || rank[st.show] > rank[best.show] || rank[st.show] == rank[best.show] && st.since.After(best.since) {
			best = st
		}
	}
	prev, wasOnline := s.current[userID]
	if best == nil {
		if !wasOnline {
			return s.offlineLocked(userID), false
		}
		delete(s.current, userID)
		s.lastSeen[userID] = time.Now()
		return s.offlineLocked(userID), true
	}
	p := Presence{UserID: userID, Show: best.show, Status: best.status}
	delete(s.lastSeen, userID)
	s.current[userID] = p
	return p, !wasOnline || prev.Show != p.Show || prev.Status != p.Status
}

func (s *Service) offlineLocked(userID string) Presence {
	p := Presence{UserID: userID, Show: Offline}
	if t, ok := s.lastSeen[userID]; ok {
		p.LastSeen = &t
	}
	return p
}

// Get returns the presence of userID.
func (s *Service) Get(userID string) Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.current[userID]; ok {
		return p
	}
	return s.offlineLocked(userID)
}

// NoteContacts records the contacts the backend returned to watcher.
func (s *Service) NoteContacts(watcher string, contacts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.contactsOf[watcher] {
		delete(s.watchers[c], watcher)
	}
	set := make(map[string]struct{}, len(contacts))
	for _, c := range contacts {
		set[c] = struct{}{}
		if s.watchers[c] == nil {
			s.watchers[c] = map[string]struct{}{}
		}
		s.watchers[c][watcher] = struct{}{}
	}
	s.contactsOf[watcher] = set
}

// NoteThread records a thread's members as the backend returned them.
func (s *Service) NoteThread(threadID string, members []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.membersOf[threadID] {
		delete(s.threadsOf[m], threadID)
	}
	s.membersOf[threadID] = slices.Clone(members)
	for _, m := range members {
		if s.threadsOf[m] == nil {
			s.threadsOf[m] = map[string]struct{}{}
		}
		s.threadsOf[m][threadID] = struct{}{}
	}
}

// MaySee reports whether viewer may see userID's presence: userID is among
// viewer's contacts, or both are members of a thread ECB has seen.
func (s *Service) MaySee(viewer, userID string) bool {
	if viewer == userID {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.contactsOf[viewer][userID]; ok {
		return true
	}
	for t := range s.threadsOf[userID] {
		if slices.Contains(s.membersOf[t], viewer) {
			return true
		}
	}
	return false
}

// push sends p to the users who may see it.
func (s *Service) push(p Presence) {
	if s.hub == nil {
		return
	}
	s.mu.Lock()
	targets := map[string]struct{}{}
	for w := range s.watchers[p.UserID] {
		targets[w] = struct{}{}
	}
	threads := make([]string, 0, len(s.threadsOf[p.UserID]))
	for t := range s.threadsOf[p.UserID] {
		threads = append(threads, t)
	}
	s.mu.Unlock()
	for _, t := range threads {
		for _, u := range s.hub.ListenerUsers(t) {
			targets[u] = struct{}{}
		}
	}
	delete(targets, p.UserID)
	data, err := json.Marshal(p)
	if err != nil {
		return
	}
	push := &hub.Push{Event: EventPresence, Data: data, At: time.Now()}
	for u := range targets {
		s.hub.SendToUser(u, push, nil)
	}
}
