package presence

import (
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
)

type nopConn struct{ id int }

func (*nopConn) Deliver(*hub.Push) bool { return true }
func (*nopConn) Close(hub.Reason)       {}

// A user's connections and threads share one entry, which goes once both
// are empty: whichever empties last, nothing of the user stays behind.
func TestUserEntryGoesWhenConnsAndThreadsAreGone(t *testing.T) {
	s := New()
	a, b := &nopConn{1}, &nopConn{2}
	s.ConnRegistered(a, "u1")
	s.ConnRegistered(b, "u1")
	s.NoteThread("t1", []string{"u1", "u2"})
	if got := s.Contribution("u1").Conns; got != 2 {
		t.Fatalf("u1 has %d connections, want 2", got)
	}
	if !s.MaySee("u2", "u1") || !s.MaySee("u1", "u2") {
		t.Fatal("members of one thread do not see each other")
	}

	// The connections go first: the thread keeps u1's entry.
	s.ConnUnregistered(a, "u1")
	s.ConnUnregistered(b, "u1")
	if got := s.Contribution("u1").Conns; got != 0 {
		t.Fatalf("u1 has %d connections after both left, want 0", got)
	}
	if !s.MaySee("u2", "u1") {
		t.Fatal("u1's thread was forgotten with its connections")
	}
	// Then the membership: u1 leaves t1, and u2's entry stays.
	s.NoteThread("t1", []string{"u2"})
	if s.MaySee("u2", "u1") {
		t.Fatal("u1 is still seen as a member of t1")
	}
	if _, ok := s.users["u1"]; ok {
		t.Fatalf("u1's entry stayed with neither connection nor thread: %+v", s.users["u1"])
	}
	if _, ok := s.users["u2"]; !ok {
		t.Fatal("u2's entry went while u2 is a member of t1")
	}

	// The other order: the thread goes first, the connection keeps the entry.
	s.ConnRegistered(a, "u3")
	s.NoteThread("t2", []string{"u3"})
	s.NoteThread("t2", nil)
	if got := s.Contribution("u3").Conns; got != 1 {
		t.Fatalf("u3 has %d connections, want 1", got)
	}
	s.ConnUnregistered(a, "u3")
	if _, ok := s.users["u3"]; ok {
		t.Fatal("u3's entry stayed after its thread and connection went")
	}
}

// What the memory store remembers of a push reads back as it was, with or
// without a status (and with a NUL inside one).
func TestShownReadsBackAsPushed(t *testing.T) {
	for _, p := range []Presence{
		{Show: Available},
		{Show: Away, Status: "lunch"},
		{Show: Available, Status: "a\x00b"},
	} {
		got := shownAs(p).presence()
		if got.Show != p.Show || got.Status != p.Status {
			t.Errorf("shownAs(%q, %q) reads back as (%q, %q)", p.Show, p.Status, got.Show, got.Status)
		}
	}
}
