package refbackend

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func TestEditMessageAuthorOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "first", callOpts{})
	id := th.Message.ID
	var out ecbserver.EditMessageResponse
	e.ok(ecbserver.PathEditMessage, ecbserver.EditMessageRequest{UserID: "alice", ThreadID: th.Thread.ID, MessageID: id, Body: "first, fixed"}, &out, callOpts{})
	if out.Message.Body != "first, fixed" || out.Message.EditedAt == nil {
		t.Fatalf("edit answered %+v", out.Message)
	}
	if got := e.getThread("bob", th.Thread.ID, "", 0); got.Messages[0].Body != "first, fixed" || got.Messages[0].EditedAt == nil {
		t.Fatalf("history after the edit %+v", got.Messages)
	}
	// Bob did not write it; an owner does not rewrite another's words either.
	m := e.addMessage("bob", th.Thread.ID, "bob's", "")
	e.fails(ecbserver.PathEditMessage, ecbserver.EditMessageRequest{UserID: "alice", ThreadID: th.Thread.ID, MessageID: m.Message.ID, Body: "x"}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathEditMessage, ecbserver.EditMessageRequest{UserID: "carol", ThreadID: th.Thread.ID, MessageID: id, Body: "x"}, callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathEditMessage, ecbserver.EditMessageRequest{UserID: "alice", ThreadID: th.Thread.ID, MessageID: "m_nope", Body: "x"}, callOpts{}, http.StatusNotFound, ecbserver.CodeNotFound)
	e.fails(ecbserver.PathEditMessage, ecbserver.EditMessageRequest{UserID: "alice", ThreadID: th.Thread.ID, MessageID: id, Body: "   "}, callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
}

func TestReactionsCountedOncePerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "hello", callOpts{})
	req := func(user, r string) ecbserver.ReactionRequest {
		return ecbserver.ReactionRequest{UserID: user, ThreadID: th.Thread.ID, MessageID: th.Message.ID, Reaction: r}
	}
	var out ecbserver.ReactionResponse
	call := func(path string, r ecbserver.ReactionRequest) {
		out = ecbserver.ReactionResponse{}
		e.ok(path, r, &out, callOpts{})
	}
	call(ecbserver.PathReact, req("alice", "👍"))
	if !out.Changed || len(out.Message.Reactions) != 1 || out.Message.Reactions[0] != (ecbserver.ReactionCount{Reaction: "👍", Count: 1, Me: true}) {
		t.Fatalf("react %+v", out)
	}
	call(ecbserver.PathReact, req("alice", "👍"))
	if out.Changed || out.Message.Reactions[0].Count != 1 {
		t.Fatalf("a second react counted: %+v", out)
	}
	call(ecbserver.PathReact, req("bob", "👍"))
	call(ecbserver.PathReact, req("bob", "ok"))
	got := e.getThread("alice", th.Thread.ID, "", 0).Messages[0].Reactions
	if len(got) != 2 || got[0] != (ecbserver.ReactionCount{Reaction: "👍", Count: 2, Me: true}) || got[1] != (ecbserver.ReactionCount{Reaction: "ok", Count: 1}) {
		t.Fatalf("alice's history reactions %+v", got)
	}
	call(ecbserver.PathUnreact, req("alice", "👍"))
	if !out.Changed || len(out.Message.Reactions) != 2 || out.Message.Reactions[0].Me || out.Message.Reactions[1].Me {
		t.Fatalf("unreact %+v", out)
	}
	call(ecbserver.PathUnreact, req("alice", "👍"))
	if out.Changed {
		t.Fatal("a second unreact changed something")
	}
	e.fails(ecbserver.PathReact, req("carol", "👍"), callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathReact, req("bob", strings.Repeat("x", maxReactionBytes+1)), callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
	e.fails(ecbserver.PathReact, req("bob", "a b"), callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
}

func TestReplyQuotesItsParent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", strings.Repeat("long ", 50), callOpts{})
	other := e.createThread("alice", []string{"carol"}, "", "elsewhere", callOpts{})
	var out ecbserver.AddThreadMessageResponse
	e.ok(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: th.Thread.ID, Body: "answer", ReplyTo: th.Message.ID}, &out, callOpts{})
	q := out.Message.ReplyTo
	if q == nil || q.MessageID != th.Message.ID || q.AuthorID != "alice" || !strings.HasPrefix(q.Excerpt, "long long") || len([]rune(q.Excerpt)) != excerptRunes+1 {
		t.Fatalf("reply quote %+v", q)
	}
	hist := e.getThread("alice", th.Thread.ID, "", 0).Messages
	if hist[1].ReplyTo == nil || hist[1].ReplyTo.AuthorID != "alice" {
		t.Fatalf("history %+v", hist[1])
	}
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: th.Thread.ID, Body: "x", ReplyTo: other.Message.ID}, callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: th.Thread.ID, Body: "x", ReplyTo: "m_nope"}, callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
}

func TestSearchMessagesOnlyReadableThreads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ab := e.createThread("alice", []string{"bob"}, "", "the quarterly budget", callOpts{})
	ac := e.createThread("alice", []string{"carol"}, "", "budgeting with carol", callOpts{})
	e.addMessage("bob", ab.Thread.ID, "nothing here", "")
	var out ecbserver.SearchMessagesResponse
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: "budget"}, &out, callOpts{})
	if len(out.Hits) != 2 || out.Hits[0].Message.ThreadID != ac.Thread.ID || out.Hits[1].Message.ThreadID != ab.Thread.ID {
		t.Fatalf("alice's hits %+v", out.Hits)
	}
	if c := e.threadClaims(out.Hits[0].ThreadToken); c.UID != "alice" || c.Subject != ac.Thread.ID {
		t.Fatalf("hit token %+v", c)
	}
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "bob", Query: "budget"}, &out, callOpts{})
	if len(out.Hits) != 1 || out.Hits[0].Message.ThreadID != ab.Thread.ID {
		t.Fatalf("bob sees %+v", out.Hits)
	}
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: "budget", ThreadID: ab.Thread.ID}, &out, callOpts{})
	if len(out.Hits) != 1 {
		t.Fatalf("thread filter %+v", out.Hits)
	}
	// A query is never an FTS5 syntax error, and an edit is found by its new words.
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: `"AND (OR *`}, &out, callOpts{})
	e.ok(ecbserver.PathEditMessage, ecbserver.EditMessageRequest{UserID: "bob", ThreadID: ab.Thread.ID, MessageID: e.getThread("bob", ab.Thread.ID, "", 0).Messages[1].ID, Body: "zebra"}, &ecbserver.EditMessageResponse{}, callOpts{})
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: "zebra"}, &out, callOpts{})
	if len(out.Hits) != 1 || out.Hits[0].Message.Body != "zebra" {
		t.Fatalf("edited message not found by its new words: %+v", out.Hits)
	}
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: "nothing"}, &out, callOpts{})
	if len(out.Hits) != 0 {
		t.Fatalf("the old words still match: %+v", out.Hits)
	}
	// Paging.
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: "budget", Limit: 1}, &out, callOpts{})
	if len(out.Hits) != 1 || out.NextCursor == "" {
		t.Fatalf("page 1 %+v", out)
	}
	cursor := out.NextCursor
	out = ecbserver.SearchMessagesResponse{}
	e.ok(ecbserver.PathSearchMessages, ecbserver.SearchMessagesRequest{UserID: "alice", Query: "budget", Limit: 1, Cursor: cursor}, &out, callOpts{})
	if len(out.Hits) != 1 || out.Hits[0].Message.ThreadID != ab.Thread.ID || out.NextCursor != "" {
		t.Fatalf("page 2 %+v", out)
	}
}
