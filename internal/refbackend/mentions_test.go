package refbackend

import (
	"slices"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func (e *env) mention(user, thread, body, clientID, visibility string, mentions ...string) ecbserver.AddThreadMessageResponse {
	e.tb.Helper()
	var out ecbserver.AddThreadMessageResponse
	e.ok(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{
		UserID: user, ThreadID: thread, Body: body, ClientMessageID: clientID, Visibility: visibility, Mentions: mentions,
	}, &out, callOpts{idempotencyKey: clientID})
	return out
}

// mentioned returns Thread.Mentioned of user's thread in getThreads and in
// getThread, failing when either leaves it out or they disagree.
func (e *env) mentioned(user, thread string) bool {
	e.tb.Helper()
	g := e.getThread(user, thread, "", 0).Thread.Mentioned
	if g == nil {
		e.tb.Fatalf("getThread of %s: no mentioned", user)
	}
	for _, st := range e.getThreads(user).Threads {
		if st.Thread.ID == thread {
			if st.Thread.Mentioned == nil || *st.Thread.Mentioned != *g {
				e.tb.Fatalf("getThreads of %s: mentioned %v, getThread %v", user, st.Thread.Mentioned, *g)
			}
			return *g
		}
	}
	e.tb.Fatalf("getThreads of %s does not list %s", user, thread)
	return false
}

// TestMentionsKeepMembersOnly: non-members, unknown users, the author and
// repeats are dropped, not refused; the message carries the kept list in
// its answer and in the history.
func TestMentionsKeepMembersOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "hi", callOpts{})
	id := th.Thread.ID
	m := e.mention("alice", id, "@bob @carol @nobody", "", "", "carol", "bob", "nobody", "alice", "bob")
	if !slices.Equal(m.Message.Mentions, []string{"bob"}) {
		t.Fatalf("kept mentions %v, want [bob]", m.Message.Mentions)
	}
	h := e.getThread("alice", id, "", 0).Messages
	if last := h[len(h)-1]; last.ID != m.Message.ID || !slices.Equal(last.Mentions, []string{"bob"}) {
		t.Fatalf("history %+v", last)
	}
	if h[0].Mentions != nil {
		t.Fatalf("the first message mentions %v", h[0].Mentions)
	}
	// A retry with the same key answers the stored mentions, stores none again.
	again := e.mention("alice", id, "ping", "k1", "", "bob")
	retry := e.mention("alice", id, "ping", "k1", "", "bob")
	if again.Message.ID != retry.Message.ID || !slices.Equal(retry.Message.Mentions, []string{"bob"}) {
		t.Fatalf("retry %+v, first %+v", retry.Message, again.Message)
	}
	// A removed member (access 0) is no longer mentioned.
	e.setAccess(id, "bob", 0)
	if r := e.mention("alice", id, "@bob?", "", ""); r.Message.Mentions != nil {
		t.Fatalf("no mentions asked, got %v", r.Message.Mentions)
	}
	if r := e.mention("alice", id, "@bob?", "", "", "bob"); r.Message.Mentions != nil {
		t.Fatalf("a removed member was kept: %v", r.Message.Mentions)
	}
}

// TestMentionedUntilRead: a mention after the read mark marks the thread;
// markRead past it, or the user's own message, clears it; a mention of
// someone else does not mark it.
func TestMentionedUntilRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob", "carol"}, "", "hi", callOpts{})
	id := th.Thread.ID
	if e.mentioned("bob", id) {
		t.Fatal("bob is mentioned before any mention")
	}
	m := e.mention("alice", id, "@bob look", "", "", "bob")
	if !e.mentioned("bob", id) {
		t.Fatal("bob is not mentioned after a mention")
	}
	if e.mentioned("carol", id) {
		t.Fatal("carol is mentioned by bob's mention")
	}
	e.addMessage("alice", id, "more", "")
	if !e.mentioned("bob", id) {
		t.Fatal("a later message cleared bob's mention")
	}
	e.markRead("bob", id, m.Message.ID)
	if e.mentioned("bob", id) {
		t.Fatal("markRead past the mention did not clear it")
	}
	e.mention("alice", id, "@bob again", "", "", "bob")
	if !e.mentioned("bob", id) {
		t.Fatal("a second mention did not mark it")
	}
	e.addMessage("bob", id, "yes?", "")
	if e.mentioned("bob", id) {
		t.Fatal("bob's own message did not clear his mention")
	}
	// A deleted message's mention no longer counts.
	d := e.mention("alice", id, "@carol", "", "", "carol")
	if !e.mentioned("carol", id) {
		t.Fatal("carol is not mentioned")
	}
	var del ecbserver.DeleteMessageResponse
	e.ok(ecbserver.PathDeleteMessage, ecbserver.DeleteMessageRequest{UserID: "alice", ThreadID: id, MessageID: d.Message.ID}, &del, callOpts{})
	if del.Message.Mentions != nil {
		t.Fatalf("a deleted message still names its mentions: %v", del.Message.Mentions)
	}
	if e.mentioned("carol", id) {
		t.Fatal("a deleted message still mentions carol")
	}
}

// TestAWhisperMentionsAgentsOnly: a whisper keeps the mentions of members
// who may read it (role agent or supervisor), and marks only their thread.
func TestAWhisperMentionsAgentsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("agent1", []string{"alice", "agent2"}, "", "hello", callOpts{})
	id := th.Thread.ID
	w := e.mention("agent1", id, "@agent2 @alice", "", ecbserver.VisibilityAgents, "alice", "agent2")
	if !slices.Equal(w.Message.Mentions, []string{"agent2"}) {
		t.Fatalf("whisper mentions %v, want [agent2]", w.Message.Mentions)
	}
	if e.mentioned("alice", id) || !e.mentioned("agent2", id) {
		t.Fatal("mentioned of a whisper: alice marked or agent2 not")
	}
}
