package refbackend

import (
	"net/http"
	"slices"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func (e *env) joinThread(user, thread string) ecbserver.JoinThreadResponse {
	e.tb.Helper()
	var out ecbserver.JoinThreadResponse
	e.ok(ecbserver.PathJoinThread, ecbserver.JoinThreadRequest{UserID: user, ThreadID: thread}, &out, callOpts{})
	return out
}

func TestLobbyIsPublicAndHasNoMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var pub ecbserver.GetPublicThreadsResponse
	e.ok(ecbserver.PathGetPublicThreads, ecbserver.GetPublicThreadsRequest{UserID: "alice"}, &pub, callOpts{})
	if len(pub.Threads) != 1 || pub.Threads[0].ID != LobbyID || pub.Threads[0].Subject != "Lobby" || !pub.Threads[0].Public || len(pub.Threads[0].Members) != 0 {
		t.Fatalf("public threads: %+v", pub.Threads)
	}
	for _, u := range []string{"alice", "bob", "carol", "agent1", "super"} {
		if _, ok := e.unread(u, LobbyID); ok {
			t.Fatalf("%s is a member of the Lobby before joining", u)
		}
	}
	// Not a member: getThread is refused until joinThread.
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "alice", ThreadID: LobbyID}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)

	j := e.joinThread("alice", LobbyID)
	if !j.Joined || !slices.Equal(j.Thread.Members, []string{"alice"}) {
		t.Fatalf("join: %+v", j)
	}
	if c := e.threadClaims(j.ThreadToken); c.UID != "alice" || c.Acc != memberAccess || c.Subject != LobbyID {
		t.Fatalf("token claims %+v", c)
	}
	if again := e.joinThread("alice", LobbyID); again.Joined {
		t.Fatalf("a second join changed something: %+v", again)
	}
	e.addMessage("alice", LobbyID, "hello lobby", "")
	if got := e.getThread("alice", LobbyID, "", 0); len(got.Messages) != 1 {
		t.Fatalf("lobby history %+v", got.Messages)
	}
}

func TestJoinThreadRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	private := e.createThread("alice", []string{"bob"}, "", "hi", callOpts{}).Thread.ID
	e.fails(ecbserver.PathJoinThread, ecbserver.JoinThreadRequest{UserID: "carol", ThreadID: private}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathJoinThread, ecbserver.JoinThreadRequest{UserID: "carol", ThreadID: "t_nope"}, callOpts{}, http.StatusNotFound, ecbserver.CodeNotFound)
	// A banned member (access 0) cannot join their way back in.
	e.joinThread("carol", LobbyID)
	e.setAccess(LobbyID, "carol", 0)
	e.fails(ecbserver.PathJoinThread, ecbserver.JoinThreadRequest{UserID: "carol", ThreadID: LobbyID}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
}

func TestCreatePublicThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var out ecbserver.CreateThreadResponse
	e.ok(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "bob", Participants: []string{}, Subject: "Open room", Public: true,
		Message: ecbserver.NewMessage{Body: "welcome"}}, &out, callOpts{})
	if !out.Thread.Public || !slices.Equal(out.Thread.Members, []string{"bob"}) {
		t.Fatalf("created %+v", out.Thread)
	}
	if j := e.joinThread("carol", out.Thread.ID); !j.Joined {
		t.Fatalf("join %+v", j)
	}
}

func TestModeration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob", "carol"}, "Team", "a1", callOpts{}).Thread.ID
	b1 := e.addMessage("bob", th, "b1", "").Message
	c1 := e.addMessage("carol", th, "c1", "").Message

	// Members without admin may delete their own messages only.
	e.fails(ecbserver.PathDeleteMessage, ecbserver.DeleteMessageRequest{UserID: "carol", ThreadID: th, MessageID: b1.ID}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	var dm ecbserver.DeleteMessageResponse
	e.ok(ecbserver.PathDeleteMessage, ecbserver.DeleteMessageRequest{UserID: "carol", ThreadID: th, MessageID: c1.ID}, &dm, callOpts{})
	if !dm.Message.Deleted || dm.Message.Body != "" || dm.Message.ID != c1.ID {
		t.Fatalf("deleted %+v", dm.Message)
	}
	// The owner may delete anyone's; the history keeps the place.
	e.ok(ecbserver.PathDeleteMessage, ecbserver.DeleteMessageRequest{UserID: "alice", ThreadID: th, MessageID: b1.ID}, &dm, callOpts{})
	hist := e.getThread("bob", th, "", 0).Messages
	if len(hist) != 3 || !hist[1].Deleted || hist[1].Body != "" || !hist[2].Deleted || hist[0].Deleted {
		t.Fatalf("history %+v", hist)
	}

	// Only admins and the owner update and remove; nobody removes the owner.
	subject := "Renamed"
	e.fails(ecbserver.PathUpdateThread, ecbserver.UpdateThreadRequest{UserID: "bob", ThreadID: th, Subject: &subject}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	var ut ecbserver.UpdateThreadResponse
	e.ok(ecbserver.PathUpdateThread, ecbserver.UpdateThreadRequest{UserID: "alice", ThreadID: th, Subject: &subject, Data: []byte(`{"topic":"x"}`)}, &ut, callOpts{})
	if ut.Thread.Subject != "Renamed" || string(ut.Thread.Data) != `{"topic":"x"}` {
		t.Fatalf("updated %+v", ut.Thread)
	}
	e.fails(ecbserver.PathRemoveParticipant, ecbserver.RemoveParticipantRequest{UserID: "bob", ThreadID: th, ParticipantID: "carol"}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	e.setAccess(th, "bob", memberAccess|ecbserver.AccessAdmin) // bob becomes a moderator
	e.fails(ecbserver.PathRemoveParticipant, ecbserver.RemoveParticipantRequest{UserID: "bob", ThreadID: th, ParticipantID: "alice"}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	var rp ecbserver.RemoveParticipantResponse
	e.ok(ecbserver.PathRemoveParticipant, ecbserver.RemoveParticipantRequest{UserID: "bob", ThreadID: th, ParticipantID: "carol"}, &rp, callOpts{})
	if !slices.Equal(rp.Thread.Members, []string{"alice", "bob"}) {
		t.Fatalf("after removal %+v", rp.Thread.Members)
	}
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "carol", ThreadID: th}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathRemoveParticipant, ecbserver.RemoveParticipantRequest{UserID: "bob", ThreadID: th, ParticipantID: "carol"}, callOpts{}, http.StatusNotFound, ecbserver.CodeNotFound)

	// Only the owner deletes the thread, and its history goes with it.
	e.fails(ecbserver.PathDeleteThread, ecbserver.DeleteThreadRequest{UserID: "bob", ThreadID: th}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	var dt ecbserver.DeleteThreadResponse
	e.ok(ecbserver.PathDeleteThread, ecbserver.DeleteThreadRequest{UserID: "alice", ThreadID: th}, &dt, callOpts{})
	if !slices.Equal(dt.Thread.Members, []string{"alice", "bob"}) {
		t.Fatalf("deleted thread %+v", dt.Thread)
	}
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "alice", ThreadID: th}, callOpts{}, http.StatusNotFound, ecbserver.CodeNotFound)
	var n int
	if err := e.srv.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM messages WHERE thread_id = ?`, th).Scan(&n); err != nil || n != 0 {
		t.Fatalf("messages left: %d %v", n, err)
	}
}
