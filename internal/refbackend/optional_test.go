package refbackend

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func (e *env) mustUnread(user, thread string, want int) {
	e.tb.Helper()
	got, ok := e.unread(user, thread)
	if !ok {
		e.tb.Fatalf("getThreads of %s does not list %s", user, thread)
	}
	if got != want {
		e.tb.Fatalf("unread of %s in %s = %d, want %d", user, thread, got, want)
	}
}

func TestReadMarksAndUnread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.createThread("alice", []string{"bob", "carol"}, "", "a1", callOpts{})
	th := created.Thread.ID

	// The first message is unread for the others, never for its author.
	e.mustUnread("alice", th, 0)
	e.mustUnread("bob", th, 1)
	e.mustUnread("carol", th, 1)

	b1 := e.addMessage("bob", th, "b1", "").Message
	b2 := e.addMessage("bob", th, "b2", "").Message
	// Writing reads the thread up to there: bob answered a1, so he read it.
	e.mustUnread("bob", th, 0)
	e.mustUnread("alice", th, 2)
	e.mustUnread("carol", th, 3)

	got := e.markRead("alice", th, b1.ID)
	if got.MessageID != b1.ID || got.Unread == nil || *got.Unread != 1 {
		t.Fatalf("markRead b1: %+v", got)
	}
	e.mustUnread("alice", th, 1)

	// Read marks only move forward.
	got = e.markRead("alice", th, b2.ID)
	if got.MessageID != b2.ID || *got.Unread != 0 {
		t.Fatalf("markRead b2: %+v", got)
	}
	got = e.markRead("alice", th, created.Message.ID)
	if got.MessageID != b2.ID || *got.Unread != 0 {
		t.Fatalf("markRead of an older message moved the mark back: %+v", got)
	}
	e.mustUnread("alice", th, 0)

	// Marking one's own message reads what came before it too.
	a2 := e.addMessage("alice", th, "a2", "").Message
	got = e.markRead("carol", th, created.Message.ID)
	if got.MessageID != created.Message.ID || *got.Unread != 3 {
		t.Fatalf("carol markRead a1: %+v", got)
	}
	got = e.markRead("carol", th, a2.ID)
	if got.MessageID != a2.ID || *got.Unread != 0 {
		t.Fatalf("carol markRead a2: %+v", got)
	}
	e.mustUnread("bob", th, 1) // a2

	// An idempotent retry of bob's message does not move anything.
	e.addMessage("bob", th, "b3", "cm-b3")
	e.mustUnread("bob", th, 0)
	e.markRead("alice", th, b2.ID)
	e.addMessage("bob", th, "b3", "cm-b3")
	e.mustUnread("alice", th, 1)
	e.mustUnread("bob", th, 0)
}

func TestMarkReadRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	one := e.createThread("alice", []string{"bob"}, "", "hello", callOpts{})
	other := e.createThread("bob", []string{"carol"}, "", "elsewhere", callOpts{})
	mark := func(user, thread, msg string) ecbserver.MarkReadRequest {
		return ecbserver.MarkReadRequest{UserID: user, ThreadID: thread, MessageID: msg}
	}
	th, msg := one.Thread.ID, one.Message.ID

	e.fails(ecbserver.PathMarkRead, mark("carol", th, msg), callOpts{}, 403, ecbserver.CodeForbidden)           // not a member
	e.fails(ecbserver.PathMarkRead, mark("ghost", th, msg), callOpts{}, 403, ecbserver.CodeForbidden)           // unknown user
	e.fails(ecbserver.PathMarkRead, mark("bob", "t_nope", msg), callOpts{}, 404, ecbserver.CodeNotFound)        // unknown thread
	e.fails(ecbserver.PathMarkRead, mark("bob", th, "m_nope"), callOpts{}, 404, ecbserver.CodeNotFound)         // unknown message
	e.fails(ecbserver.PathMarkRead, mark("bob", th, other.Message.ID), callOpts{}, 404, ecbserver.CodeNotFound) // another thread's
	e.fails(ecbserver.PathMarkRead, mark("bob", th, ""), callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)

	e.setAccess(th, "bob", ecbserver.AccessWrite) // write without read
	e.fails(ecbserver.PathMarkRead, mark("bob", th, msg), callOpts{}, 403, ecbserver.CodeForbidden)
	e.setAccess(th, "bob", ecbserver.AccessNone) // banned
	e.fails(ecbserver.PathMarkRead, mark("bob", th, msg), callOpts{}, 403, ecbserver.CodeForbidden)
	e.setAccess(th, "bob", ecbserver.AccessRead) // read-only is enough
	if got := e.markRead("bob", th, msg); got.MessageID != msg || *got.Unread != 0 {
		t.Fatalf("read-only markRead: %+v", got)
	}
}

// TestConcurrentMarkRead: concurrent marks end at the newest one, whatever
// order they were stored in.
func TestConcurrentMarkRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "m0", callOpts{}).Thread.ID
	ids := []string{}
	for i := 1; i <= 12; i++ {
		ids = append(ids, e.addMessage("alice", th, fmt.Sprintf("m%d", i), "").Message.ID)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { e.markRead("bob", th, id) })
	}
	wg.Wait()
	if got := e.markRead("bob", th, ids[0]); got.MessageID != ids[len(ids)-1] || *got.Unread != 0 {
		t.Fatalf("after concurrent marks: %+v, want mark %s", got, ids[len(ids)-1])
	}
}

func TestAddParticipants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.createThread("alice", []string{"bob"}, "Plans", "hi", callOpts{})
	th := created.Thread.ID
	e.addMessage("bob", th, "before carol", "")

	got := e.addParticipants("alice", th, "carol", "bob", "carol", "alice")
	if !slices.Equal(got.Added, []string{"carol"}) || !slices.Equal(got.Thread.Members, []string{"alice", "bob", "carol"}) ||
		got.Thread.ID != th || got.Thread.Subject != "Plans" || got.Thread.Unread != nil {
		t.Fatalf("addParticipants: %+v", got)
	}
	if c := e.threadClaims(got.ThreadToken); c.UID != "alice" || c.Subject != th ||
		c.Acc != ecbserver.AccessRead|ecbserver.AccessWrite|ecbserver.AccessOwner || !slices.Equal(c.Members, got.Thread.Members) {
		t.Fatalf("caller's token %+v", c)
	}

	// carol is a member with read and write, and starts with the history read.
	e.mustUnread("carol", th, 0)
	page := e.getThread("carol", th, "", 0)
	if len(page.Messages) != 2 {
		t.Fatalf("carol sees %d messages", len(page.Messages))
	}
	if c := e.threadClaims(page.ThreadToken); c.UID != "carol" || c.Acc != ecbserver.AccessRead|ecbserver.AccessWrite {
		t.Fatalf("carol's token %+v", c)
	}
	e.addMessage("carol", th, "thanks", "")
	e.addMessage("alice", th, "welcome", "")
	e.mustUnread("carol", th, 1)
	e.mustUnread("bob", th, 2)

	// Everyone a member already: nothing added, and added is [] on the wire.
	r := e.call(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: th, Participants: []string{"bob", "carol"}}, callOpts{})
	if r.status != 200 || !strings.Contains(string(r.body), `"added":[]`) {
		t.Fatalf("no-op addParticipants: %d %s", r.status, r.body)
	}

	// The admin bit is enough; a plain member may not add.
	second := e.createThread("alice", []string{"bob"}, "", "second", callOpts{}).Thread.ID
	add := func(user, thread string, participants ...string) ecbserver.AddParticipantsRequest {
		return ecbserver.AddParticipantsRequest{UserID: user, ThreadID: thread, Participants: participants}
	}
	e.fails(ecbserver.PathAddParticipants, add("bob", second, "carol"), callOpts{}, 403, ecbserver.CodeForbidden)
	e.setAccess(second, "bob", ecbserver.AccessRead|ecbserver.AccessWrite|ecbserver.AccessAdmin)
	if got := e.addParticipants("bob", second, "carol"); !slices.Equal(got.Added, []string{"carol"}) {
		t.Fatalf("admin add: %+v", got)
	} else if c := e.threadClaims(got.ThreadToken); c.UID != "bob" || c.Acc != 7 {
		t.Fatalf("admin's token %+v", c)
	}
}

func TestAddParticipantsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "hi", callOpts{}).Thread.ID
	add := func(user, thread string, participants ...string) ecbserver.AddParticipantsRequest {
		return ecbserver.AddParticipantsRequest{UserID: user, ThreadID: thread, Participants: participants}
	}
	e.fails(ecbserver.PathAddParticipants, add("alice", th, "carol", "ghost"), callOpts{}, 400, ecbserver.CodeInvalidArgument) // unknown user
	e.fails(ecbserver.PathAddParticipants, add("alice", th, "agent1"), callOpts{}, 403, ecbserver.CodeForbidden)               // not a contact
	e.fails(ecbserver.PathAddParticipants, add("carol", th, "bob"), callOpts{}, 403, ecbserver.CodeForbidden)                  // not a member
	e.fails(ecbserver.PathAddParticipants, add("alice", "t_nope", "carol"), callOpts{}, 404, ecbserver.CodeNotFound)
	e.fails(ecbserver.PathAddParticipants, add("alice", th), callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)
	if m := e.getThread("alice", th, "", 0).Thread.Members; !slices.Equal(m, []string{"alice", "bob"}) {
		t.Fatalf("refused calls changed the members: %v", m)
	}

	// A banned user stays banned.
	e.setAccess(th, "bob", ecbserver.AccessNone)
	e.fails(ecbserver.PathAddParticipants, add("alice", th, "bob"), callOpts{}, 403, ecbserver.CodeForbidden)
	if _, ok := e.unread("bob", th); ok {
		t.Fatal("banned user got the thread back")
	}

	// Staff may add anyone known, up to the member cap.
	staff := e.createThread("agent1", []string{"alice"}, "", "ticket", callOpts{}).Thread.ID
	if got := e.addParticipants("agent1", staff, "bob", "super"); !slices.Equal(got.Added, []string{"bob", "super"}) {
		t.Fatalf("staff add: %+v", got)
	}
	for i := range maxMembers - 4 {
		if _, err := e.srv.db.ExecContext(t.Context(), `INSERT INTO users(id, name, password_hash, password_salt, password_iter) VALUES (?, ?, x'00', x'00', 1)`,
			fmt.Sprintf("u%03d", i), fmt.Sprintf("User %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var many []string
	for i := range maxMembers - 4 {
		many = append(many, fmt.Sprintf("u%03d", i))
	}
	if got := e.addParticipants("agent1", staff, many[:len(many)-1]...); len(got.Thread.Members) != maxMembers-1 {
		t.Fatalf("%d members", len(got.Thread.Members))
	}
	e.fails(ecbserver.PathAddParticipants, add("agent1", staff, many[len(many)-1], "carol"), callOpts{}, 409, ecbserver.CodeConflict)
	if got := e.addParticipants("agent1", staff, many[len(many)-1]); len(got.Thread.Members) != maxMembers {
		t.Fatalf("%d members at the cap", len(got.Thread.Members))
	}
}

func TestLeaveThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob", "carol"}, "", "hi", callOpts{}).Thread.ID
	e.addMessage("bob", th, "hello", "")

	got := e.leaveThread("bob", th)
	if got.Thread.ID != th || !slices.Equal(got.Thread.Members, []string{"alice", "carol"}) || got.Thread.Unread != nil {
		t.Fatalf("leaveThread: %+v", got)
	}
	if _, ok := e.unread("bob", th); ok {
		t.Fatal("getThreads still lists the thread bob left")
	}
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "bob", ThreadID: th}, callOpts{}, 403, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: th, Body: "x"}, callOpts{}, 403, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: "bob", ThreadID: th, MessageID: got.Thread.LastMessage.ID}, callOpts{}, 403, ecbserver.CodeForbidden)
	leave := func(user, thread string) ecbserver.LeaveThreadRequest {
		return ecbserver.LeaveThreadRequest{UserID: user, ThreadID: thread}
	}
	e.fails(ecbserver.PathLeaveThread, leave("bob", th), callOpts{}, 403, ecbserver.CodeForbidden) // twice
	e.fails(ecbserver.PathLeaveThread, leave("bob", "t_nope"), callOpts{}, 404, ecbserver.CodeNotFound)
	// The others carry on; bob's message stays.
	if p := e.getThread("carol", th, "", 0); len(p.Messages) != 2 || !slices.Equal(p.Thread.Members, []string{"alice", "carol"}) {
		t.Fatalf("after bob left: %+v", p)
	}

	// Added back, bob starts afresh: history read, new messages unread.
	e.addParticipants("alice", th, "bob")
	e.mustUnread("bob", th, 0)
	e.addMessage("carol", th, "welcome back", "")
	e.mustUnread("bob", th, 1)

	// A banned user cannot leave (it would lift the ban).
	e.setAccess(th, "carol", ecbserver.AccessNone)
	e.fails(ecbserver.PathLeaveThread, leave("carol", th), callOpts{}, 403, ecbserver.CodeForbidden)
	if acc, member, err := accessOf(t.Context(), e.srv.db, th, "carol"); err != nil || !member || acc != 0 {
		t.Fatalf("ban of carol: acc %d member %v err %v", acc, member, err)
	}

	// The owner may leave too; the thread lives on with the others.
	if got := e.leaveThread("alice", th); !slices.Equal(got.Thread.Members, []string{"bob"}) {
		t.Fatalf("after the owner left: %v", got.Thread.Members)
	}
	e.getThread("bob", th, "", 0)
}

// TestReadMarksMigration: a database from before migration 3 gets read marks
// from each member's own last message.
func TestReadMarksMigration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := openDB(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, migrations(testIterations)[:2], time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO threads(id, subject, created_by, created_at, updated_at) VALUES ('t_old', '', 'alice', 1, 5)`,
		`INSERT INTO thread_members(thread_id, user_id, access) VALUES ('t_old', 'alice', 11), ('t_old', 'bob', 3), ('t_old', 'carol', 3)`,
		`INSERT INTO messages(id, thread_id, author_id, body, created_at) VALUES
			('m_1', 't_old', 'alice', 'one', 1), ('m_2', 't_old', 'bob', 'two', 2),
			('m_3', 't_old', 'alice', 'three', 3), ('m_4', 't_old', 'bob', 'four', 4), ('m_5', 't_old', 'alice', 'five', 5)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	e := newEnvAt(t, path)
	e.mustUnread("alice", "t_old", 0) // read up to m_5, her own
	e.mustUnread("bob", "t_old", 1)   // read up to m_4: m_5 is new
	e.mustUnread("carol", "t_old", 5) // never wrote: everything
	if got := e.markRead("carol", "t_old", "m_3"); *got.Unread != 2 {
		t.Fatalf("carol after markRead m_3: %+v", got)
	}
}
