package presence

import (
	"context"
	"time"
)

// Store shares each node's part of its users' presence, and the
// relationships that say who may see whom, with the other nodes; it tells
// the Service of every node when a user's presence changed. The in-memory
// store (NewMemoryStore, the default) is the store of a node alone;
// internal/cluster implements it on Redis.
type Store interface {
	// Bind gives the store the node's side. It is called once, before any
	// other method.
	Bind(l Local)
	// Changed says that this node's contribution to userID's presence may
	// have changed. The store reads it with Local.Contribution, now or
	// later, and never with a lock of its own held that Local could wait
	// for; Changed does not block on I/O.
	Changed(userID string)
	// Share tells the other nodes of relationships this node noted (Local
	// has applied them already). It does not block on I/O.
	Share(n Note)
	// Others returns, for each of userIDs in order, the contributions of
	// the other nodes and when the user was last seen online (zero:
	// unknown).
	Others(ctx context.Context, userIDs []string) ([]Remote, error)
}

// Local is what a Store calls on its node: the Service.
type Local interface {
	// Contribution returns this node's part of userID's presence now.
	Contribution(userID string) Contribution
	// PresenceChanged is called on every node, once per change of a user's
	// presence across the nodes and in the order of the changes, so that
	// each node pushes it to the watchers connected to it.
	PresenceChanged(p Presence)
	// Noted applies relationships another node noted.
	Noted(n Note)
}

// Contribution is one node's part of a user's presence: how many
// connections the user has there (read or not), and the show and status of
// the most available of those that are read (Show empty: none is).
type Contribution struct {
	Conns  int    `json:"n"`
	Show   string `json:"s,omitempty"`
	Status string `json:"st,omitempty"`
	// Since is when Show was set (unix ms): of two equally available
	// connections, the newer setting wins.
	Since int64 `json:"t,omitempty"`
}

// Remote is what the other nodes hold of one user.
type Remote struct {
	Parts    []Contribution
	LastSeen time.Time
}

// Note is a relationship noted from the backend's answers: Watcher's
// contacts (as the backend last returned them), or a thread's members.
type Note struct {
	Watcher  string   `json:"w,omitempty"`
	Contacts []string `json:"c,omitempty"`
	Thread   string   `json:"t,omitempty"`
	Members  []string `json:"m,omitempty"`
}

// Aggregate derives a user's presence from the contributions of the nodes:
// the most available show wins (the newer setting on a tie); offline, with
// lastSeen when known, when no node has a connection that is read.
func Aggregate(userID string, parts []Contribution, lastSeen time.Time) Presence {
	var best *Contribution
	for i := range parts {
		c := &parts[i]
		if !Valid(c.Show) { // none read there (or a show this version does not know)
			continue
		}
		if best == nil || rank[c.Show] > rank[best.Show] || rank[c.Show] == rank[best.Show] && c.Since > best.Since {
			best = c
		}
	}
	if best == nil {
		p := Presence{UserID: userID, Show: Offline}
		if !lastSeen.IsZero() {
			t := lastSeen.UTC()
			p.LastSeen = &t
		}
		return p
	}
	return Presence{UserID: userID, Show: best.Show, Status: best.Status}
}

// Differs reports whether a and b are different presences for a push
// (online or not, show, status; lastSeen alone is no change).
func Differs(a, b Presence) bool {
	return a.Show != b.Show || a.Status != b.Status
}
