package ops_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// TestEditReactReplyAndResume walks issue 16 items 1-3 on the reference
// backend: each change is pushed with an offset, and a connection that
// resumes from before them gets the edit and the reactions it missed, in
// order, once.
func TestEditReactReplyAndResume(t *testing.T) {
	m := newModStack(t)
	ctx := context.Background()
	aliceConn, bobConn := &inbox{}, &inbox{}
	alice, bob := m.caller(t, "alice", aliceConn), m.caller(t, "bob", bobConn)
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "helo"}})
	if err != nil {
		t.Fatal(err)
	}
	aliceTok := created.ThreadToken
	bobTok := m.sign(t, created.Thread.ID, "bob", 3)
	g, err := m.Ops.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok})
	if err != nil {
		t.Fatal(err)
	}
	first := g.Messages[0].ID
	before := g.Offset

	// Edit: the author only.
	ed, err := m.Ops.EditMessage(ctx, alice, ops.EditMessageRequest{ThreadToken: aliceTok, MessageID: first, Body: "hello"})
	if err != nil || ed.Message.Body != "hello" || ed.Message.EditedAt == nil || ed.Offset != before+1 {
		t.Fatalf("edit %+v %v", ed, err)
	}
	if p := lastPush(t, bobConn, ops.EventMessageEdited); p["message"].(map[string]any)["body"] != "hello" || p["message"].(map[string]any)["editedAt"] == nil {
		t.Fatalf("bob was told %v", p)
	}
	if _, err := m.Ops.EditMessage(ctx, bob, ops.EditMessageRequest{ThreadToken: bobTok, MessageID: first, Body: "mine now"}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("bob edits alice's message: %v", err)
	}

	// Reactions: counted, once per user, pushed with the counts.
	r1, err := m.Ops.React(ctx, bob, ops.ReactRequest{ThreadToken: bobTok, MessageID: first, Reaction: "👍"})
	if err != nil || r1.Offset != before+2 || len(r1.Message.Reactions) != 1 || !r1.Message.Reactions[0].Me {
		t.Fatalf("react %+v %v", r1, err)
	}
	p := lastPush(t, aliceConn, ops.EventReaction)
	if p["userId"] != "bob" || p["change"] != "added" || p["counts"].(map[string]any)["👍"] != float64(1) {
		t.Fatalf("alice was told %v", p)
	}
	again, err := m.Ops.React(ctx, bob, ops.ReactRequest{ThreadToken: bobTok, MessageID: first, Reaction: "👍"})
	if err != nil || again.Offset != 0 {
		t.Fatalf("a second react was pushed: %+v %v", again, err)
	}
	if _, err := m.Ops.React(ctx, alice, ops.ReactRequest{ThreadToken: aliceTok, MessageID: first, Reaction: "👍"}); err != nil {
		t.Fatal(err)
	}
	un, err := m.Ops.Unreact(ctx, bob, ops.ReactRequest{ThreadToken: bobTok, MessageID: first, Reaction: "👍"})
	if err != nil || un.Offset != before+4 {
		t.Fatalf("unreact %+v %v", un, err)
	}
	if p := lastPush(t, aliceConn, ops.EventReaction); p["change"] != "removed" || p["counts"].(map[string]any)["👍"] != float64(1) {
		t.Fatalf("alice was told %v", p)
	}

	// A reply carries its parent's quote; a parent of another thread is refused.
	reply, err := m.Ops.SendMessage(ctx, bob, ops.SendMessageRequest{ThreadToken: bobTok, MessageInput: ops.MessageInput{Body: "hi back"}, ReplyTo: first})
	if err != nil || reply.Message.ReplyTo == nil || reply.Message.ReplyTo.AuthorID != "alice" || reply.Message.ReplyTo.Excerpt != "hello" {
		t.Fatalf("reply %+v %v", reply, err)
	}
	other, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"carol"}, Message: ops.MessageInput{Body: "elsewhere"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: aliceTok, MessageInput: ops.MessageInput{Body: "x"}, ReplyTo: other.Message.ID}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("replyTo another thread: %v", err)
	}

	// History: the last version, the counts with me for the reader, the quote.
	h, err := m.Ops.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: aliceTok})
	if err != nil || h.Messages[0].Body != "hello" || len(h.Messages[0].Reactions) != 1 || !h.Messages[0].Reactions[0].Me || h.Messages[1].ReplyTo == nil {
		t.Fatalf("history %+v %v", h, err)
	}

	// A connection that missed it all resumes from before the edit.
	late := &inbox{}
	bob2 := m.caller(t, "bob", late)
	res, err := m.Ops.Resume(ctx, bob2, ops.ResumeRequest{Threads: []ops.ResumeThread{{ThreadToken: bobTok, Epoch: g.Epoch, Offset: before}}})
	if err != nil || !res.Threads[0].Recovered || res.Threads[0].Missed != 5 {
		t.Fatalf("resume %+v %v", res, err)
	}
	want := []string{ops.EventMessageEdited, ops.EventReaction, ops.EventReaction, ops.EventReaction, ops.EventMessage}
	if got := late.events(); !slices.Equal(got, want) {
		t.Fatalf("resumed pushes %v, want %v", got, want)
	}
	for i, p := range late.got {
		if p.Offset != before+1+uint64(i) {
			t.Fatalf("push %d has offset %d", i, p.Offset)
		}
	}
}

func TestReactionLimits(t *testing.T) {
	s := stacktest.New(t, stacktest.Options{Ops: ops.Config{Reactions: []string{"👍", "ok"}, ReactionsPerSecond: 1}})
	ctx := context.Background()
	u, err := s.Ops.Authenticate(s.UserToken("alice"), "")
	if err != nil {
		t.Fatal(err)
	}
	alice := ops.Caller{User: u}
	created, err := s.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	req := func(r string) ops.ReactRequest {
		return ops.ReactRequest{ThreadToken: created.ThreadToken, MessageID: created.Message.ID, Reaction: r}
	}
	for _, bad := range []string{"", "🎉", "a b", strings.Repeat("x", 33), "\xff"} {
		if _, err := s.Ops.React(ctx, alice, req(bad)); codeOf(err) != apierr.InvalidArgument {
			t.Errorf("reaction %q: %v", bad, err)
		}
	}
	// Burst 2 at 1 per second: the third in a row is limited.
	for i, r := range []string{"👍", "ok"} {
		if _, err := s.Ops.React(ctx, alice, req(r)); err != nil {
			t.Fatalf("react %d: %v", i, err)
		}
	}
	if _, err := s.Ops.Unreact(ctx, alice, req("ok")); codeOf(err) != apierr.RateLimited {
		t.Fatalf("third reaction in a burst of 2: %v", err)
	}
}

func TestSearchMessagesOps(t *testing.T) {
	m := newModStack(t)
	ctx := context.Background()
	alice, carol := m.caller(t, "alice", nil), m.caller(t, "carol", nil)
	ab, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "secret plans"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ops.CreateThread(ctx, carol, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "carol's plans"}}); err != nil {
		t.Fatal(err)
	}
	res, err := m.Ops.SearchMessages(ctx, alice, ops.SearchMessagesRequest{Query: "plans"})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].Message.ThreadID != ab.Thread.ID || res.Hits[0].ThreadToken == "" {
		t.Fatalf("alice finds %+v %v", res, err)
	}
	// The hit's threadToken is one alice can use.
	if _, err := m.Ops.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: res.Hits[0].ThreadToken}); err != nil {
		t.Fatalf("the hit's token: %v", err)
	}
	// In one thread only, by its threadToken; carol cannot search alice's thread.
	if res, err := m.Ops.SearchMessages(ctx, alice, ops.SearchMessagesRequest{Query: "plans", ThreadToken: ab.ThreadToken}); err != nil || len(res.Hits) != 1 {
		t.Fatalf("in one thread %+v %v", res, err)
	}
	if _, err := m.Ops.SearchMessages(ctx, carol, ops.SearchMessagesRequest{Query: "plans", ThreadToken: ab.ThreadToken}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("carol with alice's token: %v", err)
	}
	for _, bad := range []ops.SearchMessagesRequest{{Query: "  "}, {Query: strings.Repeat("q", 300)}, {Query: "x", Limit: -1}, {Query: "x", Limit: 1000}} {
		if _, err := m.Ops.SearchMessages(ctx, alice, bad); codeOf(err) != apierr.InvalidArgument {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// FuzzMessageOpsCall decodes and runs the operations of issue 16 items 1-3
// and 7 with "$TOK" replaced by a valid threadToken and "$MSG" by a
// message id: never a panic, every error a code of the closed list.
func FuzzMessageOpsCall(f *testing.F) {
	for _, seed := range []struct{ op, payload string }{
		{"editMessage", `{"threadToken":"$TOK","messageId":"$MSG","body":"new"}`},
		{"editMessage", `{"threadToken":"$TOK","messageId":"$MSG","body":"new","data":null}`},
		{"editMessage", `{"threadToken":"$TOK","messageId":"$MSG","body":"","data":[1]}`},
		{"react", `{"threadToken":"$TOK","messageId":"$MSG","reaction":"👍"}`},
		{"react", `{"threadToken":"$TOK","messageId":"$MSG","reaction":7}`},
		{"unreact", `{"threadToken":"$TOK","messageId":"$MSG","reaction":"👍"}`},
		{"sendMessage", `{"threadToken":"$TOK","body":"r","replyTo":"$MSG"}`},
		{"sendMessage", `{"threadToken":"$TOK","body":"r","replyTo":"m_nope"}`},
		{"searchMessages", `{"query":"hello"}`},
		{"searchMessages", `{"query":"\"AND (","threadToken":"$TOK","cursor":"zz","limit":3}`},
	} {
		f.Add(seed.op, []byte(seed.payload))
	}
	m := newModStackTB(f)
	ctx := context.Background()
	alice := m.callerTB(f, "alice", &inbox{})
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hello"}})
	if err != nil {
		f.Fatal(err)
	}
	r := strings.NewReplacer("$TOK", created.ThreadToken, "$MSG", created.Message.ID)
	f.Fuzz(func(t *testing.T, op string, payload []byte) {
		_, err := m.Ops.Call(ctx, alice, op, []byte(r.Replace(string(payload))))
		if err != nil && !slices.Contains(apierr.Codes, apierr.From(err).Code) {
			t.Fatalf("code %q is not in the closed list", apierr.From(err).Code)
		}
	})
}
