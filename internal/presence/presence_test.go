package presence_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/presence"
)

// conn is a connection at the hub's seam that keeps the presence pushes it gets.
type conn struct {
	mu  sync.Mutex
	got []presence.Presence
}

func (c *conn) Deliver(p *hub.Push) bool {
	if p.Event != presence.EventPresence {
		return true
	}
	var pr presence.Presence
	if err := json.Unmarshal(p.Data, &pr); err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, pr)
	return true
}

func (c *conn) Close(hub.Reason) {}

// take returns the pushes received since the last call.
func (c *conn) take() []presence.Presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

// shows is take as "user:show" strings.
func (c *conn) shows() []string {
	var out []string
	for _, p := range c.take() {
		out = append(out, p.UserID+":"+p.Show)
	}
	return out
}

// newService returns a presence service wired to a real hub, as ops wires it.
func newService() (*presence.Service, *hub.Hub) {
	s := presence.New()
	h := hub.New(hub.Config{Observer: s})
	s.SetHub(h)
	return s, h
}

// get is the presence of one user, as getPresence answers it.
func get(tb testing.TB, s *presence.Service, userID string) presence.Presence {
	tb.Helper()
	ps, err := s.Get(context.Background(), []string{userID})
	if err != nil {
		tb.Fatal(err)
	}
	return ps[0]
}

func TestValid(t *testing.T) {
	for _, show := range []string{presence.Chat, presence.Available, presence.DND, presence.Away, presence.XA} {
		if !presence.Valid(show) {
			t.Errorf("%s refused", show)
		}
	}
	for _, show := range []string{presence.Offline, "", "busy", "Available"} {
		if presence.Valid(show) {
			t.Errorf("%q accepted: offline follows from having no connection, and shows are a closed list", show)
		}
	}
}

// A user's presence is the most available of their connections
// (chat > available > dnd > away > xa); each connection starts available;
// with no connection left the user is offline with lastSeen.
func TestMostAvailableConnectionWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, h := newService()
		if p := get(t, s, "alice"); p.Show != presence.Offline || p.LastSeen != nil {
			t.Fatalf("never seen: %+v", p)
		}
		phone, laptop := &conn{}, &conn{}
		h.Register(phone, "alice")
		if p := get(t, s, "alice"); p.Show != presence.Available || p.UserID != "alice" {
			t.Fatalf("one connection: %+v, want available", p)
		}
		h.Register(laptop, "alice")
		for _, c := range []struct {
			conn       *conn
			show, want string
		}{
			{phone, presence.XA, presence.Available}, // the laptop is still available
			{laptop, presence.Away, presence.Away},   // away beats xa
			{phone, presence.DND, presence.DND},      // dnd beats away
			{laptop, presence.Chat, presence.Chat},   // chat beats all
			{phone, presence.Available, presence.Chat},
			{laptop, presence.XA, presence.Available},
		} {
			if p := s.Set(context.Background(), c.conn, c.show, ""); p.Show != c.want || get(t, s, "alice").Show != c.want {
				t.Fatalf("after %s on one connection: %+v, want %s", c.show, p, c.want)
			}
		}
		// Equal shows: the connection set last speaks (its status too).
		s.Set(context.Background(), phone, presence.Away, "on the phone")
		time.Sleep(time.Second)
		if p := s.Set(context.Background(), laptop, presence.Away, "at the desk"); p.Status != "at the desk" {
			t.Fatalf("tie: %+v, want the latest status", p)
		}
		h.Unregister(laptop)
		if p := get(t, s, "alice"); p.Show != presence.Away || p.Status != "on the phone" {
			t.Fatalf("after the laptop left: %+v", p)
		}
		time.Sleep(time.Minute)
		left := time.Now()
		h.Unregister(phone)
		p := get(t, s, "alice")
		if p.Show != presence.Offline || p.LastSeen == nil || !p.LastSeen.Equal(left) || p.Status != "" {
			t.Fatalf("no connection left: %+v, want offline with lastSeen %v", p, left)
		}
		// Set on a connection that is gone changes nothing.
		if p := s.Set(context.Background(), phone, presence.Chat, ""); p.Show != presence.Offline || get(t, s, "alice").Show != presence.Offline {
			t.Fatalf("Set on an unregistered connection: %+v", p)
		}
		h.Register(phone, "alice")
		if p := get(t, s, "alice"); p.Show != presence.Available || p.LastSeen != nil {
			t.Fatalf("back online: %+v (a new connection starts available, without lastSeen)", p)
		}
	})
}

// Pushes go to the users who have the user among their contacts and to the
// listeners of the threads the user is a member of; never to the user, never
// to anyone else; and only when the presence changes.
func TestPushesReachWhoMaySee(t *testing.T) {
	s, h := newService()
	watcher, listener, member, stranger, self := &conn{}, &conn{}, &conn{}, &conn{}, &conn{}
	for c, u := range map[*conn]string{watcher: "bob", listener: "carol", member: "dave", stranger: "eve", self: "alice"} {
		h.Register(c, u)
	}
	s.NoteContacts("bob", []string{"alice", "zed"})
	s.NoteThread("t1", []string{"alice", "carol", "dave"})
	_, _ = h.Attach(context.Background(), "t1", listener) // carol listens to t1; dave is a member who does not listen

	alice := &conn{}
	h.Register(alice, "alice") // alice's second connection: still available, no change
	if got := watcher.shows(); len(got) != 0 {
		t.Fatalf("bob got %v for a connection that changed nothing", got)
	}
	s.Set(context.Background(), alice, presence.Chat, "hi")
	want := []string{"alice:chat"}
	if got := watcher.shows(); !slices.Equal(got, want) {
		t.Errorf("contact: %v, want %v", got, want)
	}
	if got := listener.shows(); !slices.Equal(got, want) {
		t.Errorf("listener of a shared thread: %v, want %v", got, want)
	}
	for name, c := range map[string]*conn{"a member who does not listen": member, "a stranger": stranger, "the user": self} {
		if got := c.shows(); len(got) != 0 {
			t.Errorf("%s got %v", name, got)
		}
	}
	s.Set(context.Background(), alice, presence.Chat, "hi")
	if got := watcher.shows(); len(got) != 0 {
		t.Errorf("the same presence was pushed again: %v", got)
	}
	s.Set(context.Background(), alice, presence.Chat, "still here")
	if got := watcher.take(); len(got) != 1 || got[0].Status != "still here" {
		t.Errorf("a new status: %+v", got)
	}
	listener.take()

	// getContacts again, without alice: bob no longer watches her.
	s.NoteContacts("bob", []string{"zed"})
	h.Unregister(alice)
	h.Unregister(self)
	if got := watcher.shows(); len(got) != 0 {
		t.Errorf("bob, no longer a contact, got %v", got)
	}
	// Her chat connection goes (the other is available), then the last one.
	got := listener.take()
	if len(got) != 2 || got[0].Show != presence.Available || got[1].Show != presence.Offline || got[1].LastSeen == nil {
		t.Errorf("the listener got %+v, want alice available, then offline with lastSeen", got)
	}
}

// MaySee: oneself, one's contacts (as last noted), members of a thread shared
// with the user (as last noted).
func TestMaySee(t *testing.T) {
	s, _ := newService()
	s.NoteContacts("bob", []string{"alice"})
	s.NoteThread("t1", []string{"alice", "carol"})
	for _, c := range []struct {
		viewer, user string
		want         bool
	}{
		{"eve", "eve", true},
		{"bob", "alice", true},     // a contact
		{"alice", "bob", false},    // contacts are one way: alice's own list has no bob
		{"carol", "alice", true},   // a shared thread
		{"alice", "carol", true},   // both ways
		{"eve", "alice", false},    // neither
		{"bob", "carol", false},    // a contact's thread is not bob's
		{"carol", "t1", false},     // a thread id is not a user
		{"dave", "unknown", false}, // nobody knows either
	} {
		if got := s.MaySee(c.viewer, c.user); got != c.want {
			t.Errorf("MaySee(%s, %s) = %v, want %v", c.viewer, c.user, got, c.want)
		}
	}
	// The backend's latest answer replaces the earlier one.
	s.NoteThread("t1", []string{"alice", "dave"})
	s.NoteContacts("bob", nil)
	if s.MaySee("carol", "alice") || s.MaySee("bob", "alice") {
		t.Error("visibility outlived the membership or contact that gave it")
	}
	if !s.MaySee("dave", "alice") {
		t.Error("the new member does not see alice")
	}
}

// A connection nobody reads (an SSE stream kept for a resume) does not make
// its user online; read again, it counts with what it had set.
func TestUnreadConnectionDoesNotCount(t *testing.T) {
	s, h := newService()
	watcher := &conn{}
	h.Register(watcher, "bob")
	s.NoteContacts("bob", []string{"alice"})
	stream := &conn{}
	h.Register(stream, "alice")
	s.Set(context.Background(), stream, presence.DND, "")
	watcher.take()

	s.SetReading(stream, false)
	if p := get(t, s, "alice"); p.Show != presence.Offline || p.LastSeen == nil {
		t.Fatalf("while nobody reads her only connection: %+v", p)
	}
	s.SetReading(stream, false) // again: no change, no push
	s.SetReading(stream, true)
	if got := watcher.shows(); !slices.Equal(got, []string{"alice:offline", "alice:dnd"}) {
		t.Fatalf("bob got %v", got)
	}
	s.SetReading(&conn{}, true) // an unknown connection: nothing
	if got := watcher.shows(); len(got) != 0 {
		t.Fatalf("bob got %v for an unknown connection", got)
	}
}

// The hub tells presence about every connection that ends, whatever ended
// it: a connection cut as a slow consumer turns its user offline too.
func TestSlowConsumerCutTurnsOffline(t *testing.T) {
	s, h := newService()
	watcher := &conn{}
	h.Register(watcher, "bob")
	s.NoteContacts("bob", []string{"alice"})
	full := &refusing{}
	h.Register(full, "alice")
	s.NoteThread("t1", []string{"alice", "bob"})
	if _, err := h.Attach(context.Background(), "t1", full); err != nil {
		t.Fatal(err)
	}
	watcher.take()
	if _, err := h.Publish(context.Background(), "t1", &hub.Push{Event: "message", Data: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	// The hub cuts a slow connection found during the broker's delivery from
	// a goroutine of its own: wait for it (only a hang fails).
	for deadline := time.Now().Add(10 * time.Second); get(t, s, "alice").Show != presence.Offline; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice after her only connection was cut: %+v", get(t, s, "alice"))
		}
	}
	if got := watcher.shows(); !slices.Equal(got, []string{"alice:offline"}) {
		t.Fatalf("bob got %v", got)
	}
}

// refusing is a connection whose queue is full.
type refusing struct{ conn }

func (*refusing) Deliver(*hub.Push) bool { return false }

// Without a hub (before SetHub) presence is tracked but not pushed.
func TestNoHubNoPush(t *testing.T) {
	s := presence.New()
	c := &conn{}
	s.ConnRegistered(c, "alice")
	if p := s.Set(context.Background(), c, presence.Away, "x"); p.Show != presence.Away {
		t.Fatalf("%+v", p)
	}
	s.ConnUnregistered(c, "alice")
	if p := get(t, s, "alice"); p.Show != presence.Offline {
		t.Fatalf("%+v", p)
	}
}

// Across nodes: the most available contribution wins, the newer setting on
// a tie; a node with connections that nobody reads adds no show; offline
// carries lastSeen when known.
func TestAggregateOverNodes(t *testing.T) {
	seen := time.UnixMilli(1700000000123)
	for _, c := range []struct {
		name  string
		parts []presence.Contribution
		want  string
	}{
		{"none", nil, "offline+lastSeen"},
		{"unread only", []presence.Contribution{{Conns: 2}}, "offline+lastSeen"},
		{"one node", []presence.Contribution{{Conns: 1, Show: presence.Away, Status: "lunch", Since: 1}}, "away/lunch"},
		{"best wins", []presence.Contribution{{Conns: 1, Show: presence.XA, Since: 9}, {Conns: 1, Show: presence.DND, Since: 1}}, "dnd"},
		{"newer on a tie", []presence.Contribution{{Conns: 1, Show: presence.Away, Status: "old", Since: 1}, {Conns: 1, Show: presence.Away, Status: "new", Since: 2}}, "away/new"},
		{"unknown show ignored", []presence.Contribution{{Conns: 1, Show: "busy", Since: 5}, {Conns: 1, Show: presence.XA, Since: 1}}, "xa"},
	} {
		p := presence.Aggregate("alice", c.parts, seen)
		got := p.Show
		if p.Status != "" {
			got += "/" + p.Status
		}
		if p.LastSeen != nil {
			if !p.LastSeen.Equal(seen) {
				t.Errorf("%s: lastSeen %v", c.name, p.LastSeen)
			}
			got += "+lastSeen"
		}
		if p.UserID != "alice" || got != c.want {
			t.Errorf("%s: %+v (%s), want %s", c.name, p, got, c.want)
		}
	}
}
