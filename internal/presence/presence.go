// Package presence owns who is online and what they show (available, away,
// dnd, xa, chat; offline when no connection is left), and who may see it:
// the users who have the user among their contacts (as the backend last
// returned them) and the listeners of the threads the user is a member of.
// Presence is never stored by the backend.
//
// A user's presence is the most available one of their connections, in the
// order chat > available > dnd > away > xa > offline, over every node. A
// connection starts available. The Service is a hub.ConnObserver: it learns
// of this node's connections coming and going (including those cut by a
// ping timeout) from the hub, and hands this node's contribution (its
// connections' count and best show) to a Store. The Store finds the changes
// of a user's presence across the nodes and tells the Service of every node,
// which pushes each change to the watchers connected to it: so each
// connection gets a change once, from its own node. The in-memory Store is
// the one of a node alone; internal/cluster has the Redis one, where a
// node's contributions live as long as the node heartbeats (docs/cluster.md).
//
// The relationships (contacts, threads' members) are noted on the node that
// got them from the backend and shared through the Store, so that every node
// knows them for its own watchers.
//
// All methods are safe for concurrent use. Lock order: the Store's locks,
// then the Service's mu (the Store calls Contribution under its own lock);
// the Service never calls the Store or the hub with mu held.
package presence

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/smallset"
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
	since  int64 // Unix nanoseconds: a connection of a storm keeps 8 bytes, not a time.Time's 24
	// away: a connection kept for a resume (an SSE stream between two
	// responses) that nobody reads now; it does not make its user online.
	away bool
}

// Service tracks presence for one node.
type Service struct {
	hub   *hub.Hub
	store Store

	mu         sync.Mutex
	conns      map[hub.Conn]*connState
	users      map[string]*userEntry           // a user's connections here and threads; gone when both are empty
	contactsOf map[string]map[string]struct{}  // watcher → contacts
	watchers   map[string]smallset.Set[string] // user → who has them as contact; Sets are values: read, change, store back
	membersOf  map[string][]string             // thread → members
}

// userEntry is what the Service keeps of one user. The user's connections
// and threads share one map entry: most users have one of each, and a map
// entry per user costs more than the two Sets it would hold.
type userEntry struct {
	conns   smallset.Set[*connState] // the user's connections on this node
	threads smallset.Set[string]     // the threads ECB saw the user a member of
}

// userLocked returns userID's entry, making it when there is none.
func (s *Service) userLocked(userID string) *userEntry {
	u := s.users[userID]
	if u == nil {
		u = &userEntry{}
		s.users[userID] = u
	}
	return u
}

// entryLocked returns a copy of userID's entry, empty when there is none,
// to read (its Sets share their members with the entry's).
func (s *Service) entryLocked(userID string) userEntry {
	if u := s.users[userID]; u != nil {
		return *u
	}
	return userEntry{}
}

// forgetEmptyLocked drops u, userID's entry, once it holds nothing.
func (s *Service) forgetEmptyLocked(userID string, u *userEntry) {
	if u.conns.Len() == 0 && u.threads.Len() == 0 {
		delete(s.users, userID)
	}
}

var (
	_ hub.ConnObserver = (*Service)(nil)
	_ Local            = (*Service)(nil)
)

// New returns a Service on the in-memory Store; call SetHub before the hub
// registers connections, and SetStore (cluster mode) before it serves.
func New() *Service {
	s := &Service{
		conns:      map[hub.Conn]*connState{},
		users:      map[string]*userEntry{},
		contactsOf: map[string]map[string]struct{}{},
		watchers:   map[string]smallset.Set[string]{},
		membersOf:  map[string][]string{},
	}
	s.SetStore(NewMemoryStore())
	return s
}

// SetHub gives the service the hub it pushes through (the hub is built with
// the service as its observer, hence the two steps).
func (s *Service) SetHub(h *hub.Hub) { s.hub = h }

// SetStore replaces the Store and binds it to the Service. Call it before
// the node serves.
func (s *Service) SetStore(st Store) {
	st.Bind(s)
	s.store = st
}

// ConnRegistered implements hub.ConnObserver.
func (s *Service) ConnRegistered(c hub.Conn, userID string) {
	s.mu.Lock()
	st := &connState{userID: userID, show: Available, since: time.Now().UnixNano()}
	s.conns[c] = st
	s.userLocked(userID).conns.Add(st)
	s.mu.Unlock()
	s.store.Changed(userID)
}

// ConnUnregistered implements hub.ConnObserver.
func (s *Service) ConnUnregistered(c hub.Conn, userID string) {
	s.mu.Lock()
	if st := s.conns[c]; st != nil {
		delete(s.conns, c)
		if u := s.users[userID]; u != nil {
			u.conns.Remove(st)
			s.forgetEmptyLocked(userID, u)
		}
	}
	s.mu.Unlock()
	s.store.Changed(userID)
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
	s.mu.Unlock()
	s.store.Changed(st.userID)
}

// Set changes the show and status of one connection of its user and
// returns the user's presence now (as far as this node can tell when the
// other nodes' part cannot be read).
func (s *Service) Set(ctx context.Context, c hub.Conn, show, status string) Presence {
	s.mu.Lock()
	st := s.conns[c]
	if st == nil {
		s.mu.Unlock()
		return Presence{Show: Offline}
	}
	st.show, st.status, st.since = show, status, time.Now().UnixNano()
	userID := st.userID
	s.mu.Unlock()
	s.store.Changed(userID)
	ps, err := s.Get(ctx, []string{userID})
	if err != nil {
		return Aggregate(userID, []Contribution{s.Contribution(userID)}, time.Time{})
	}
	return ps[0]
}

// Contribution implements Local: this node's part of userID's presence.
func (s *Service) Contribution(userID string) Contribution {
	s.mu.Lock()
	defer s.mu.Unlock()
	states := s.entryLocked(userID).conns
	out := Contribution{Conns: states.Len()}
	var best *connState
	for st := range states.All() {
		if st.away {
			continue
		}
		if best == nil || rank[st.show] > rank[best.show] || rank[st.show] == rank[best.show] && st.since > best.since {
			best = st
		}
	}
	if best != nil {
		out.Show, out.Status, out.Since = best.show, best.status, best.since/int64(time.Millisecond)
	}
	return out
}

// Get returns the presence of userIDs across the nodes: this node's
// connections as they are, the other nodes' as the Store has them.
func (s *Service) Get(ctx context.Context, userIDs []string) ([]Presence, error) {
	others, err := s.store.Others(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	out := make([]Presence, len(userIDs))
	for i, id := range userIDs {
		parts := append(others[i].Parts, s.Contribution(id))
		out[i] = Aggregate(id, parts, others[i].LastSeen)
	}
	return out, nil
}

// Connections returns how many connections userID has on every node (the
// other nodes' counts as the Store has them).
func (s *Service) Connections(ctx context.Context, userID string) (int, error) {
	n := s.Contribution(userID).Conns
	others, err := s.store.Others(ctx, []string{userID})
	if err != nil {
		return n, err
	}
	for _, c := range others[0].Parts {
		n += c.Conns
	}
	return n, nil
}

// NoteContacts records the contacts the backend returned to watcher, and
// shares them with the other nodes.
func (s *Service) NoteContacts(watcher string, contacts []string) {
	n := Note{Watcher: watcher, Contacts: slices.Clone(contacts)}
	s.Noted(n)
	s.store.Share(n)
}

// NoteThread records a thread's members as the backend returned them, and
// shares them with the other nodes when they are news to this one.
func (s *Service) NoteThread(threadID string, members []string) {
	n := Note{Thread: threadID, Members: slices.Clone(members)}
	s.mu.Lock()
	same := slices.Equal(s.membersOf[threadID], members)
	s.mu.Unlock()
	if same {
		return
	}
	s.Noted(n)
	s.store.Share(n)
}

// Noted implements Local: it applies a relationship noted on any node.
func (s *Service) Noted(n Note) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.Watcher != "" {
		s.contactsLocked(n.Watcher, n.Contacts)
	}
	if n.Thread != "" {
		s.membersLocked(n.Thread, n.Members)
	}
}

func (s *Service) contactsLocked(watcher string, contacts []string) {
	for c := range s.contactsOf[watcher] {
		smallset.RemoveFrom(s.watchers, c, watcher)
	}
	set := make(map[string]struct{}, len(contacts))
	for _, c := range contacts {
		set[c] = struct{}{}
		smallset.AddTo(s.watchers, c, watcher)
	}
	s.contactsOf[watcher] = set
}

func (s *Service) membersLocked(threadID string, members []string) {
	for _, m := range s.membersOf[threadID] {
		if u := s.users[m]; u != nil {
			u.threads.Remove(threadID)
			s.forgetEmptyLocked(m, u)
		}
	}
	s.membersOf[threadID] = slices.Clone(members)
	for _, m := range members {
		s.userLocked(m).threads.Add(threadID)
	}
}

// Members returns threadID's members as the backend last returned them to
// any node (nil: no node noted them since this one started). The slice is
// the caller's.
func (s *Service) Members(threadID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.membersOf[threadID])
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
	threads := s.entryLocked(userID).threads
	for t := range threads.All() {
		if slices.Contains(s.membersOf[t], viewer) {
			return true
		}
	}
	return false
}

// PresenceChanged implements Local: it pushes p to the connections of this
// node whose users may see it (every node does the same for its own).
func (s *Service) PresenceChanged(p Presence) {
	if s.hub == nil {
		return
	}
	s.mu.Lock()
	targets := map[string]struct{}{}
	watchers := s.watchers[p.UserID]
	for w := range watchers.All() {
		targets[w] = struct{}{}
	}
	mine := s.entryLocked(p.UserID).threads
	threads := make([]string, 0, mine.Len())
	for t := range mine.All() {
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
		// This node's connections only: the other nodes push to theirs.
		s.hub.HandleCommand(hub.Command{UserID: u, Push: push})
	}
}
