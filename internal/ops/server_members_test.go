package ops_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// pushes returns the payloads of c's pushes named event.
func (c *inbox) pushes(event string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, p := range c.got {
		if p.Event == event {
			var m map[string]any
			_ = json.Unmarshal(p.Payload(), &m)
			out = append(out, m)
		}
	}
	return out
}

// threadPushOf returns c's last thread push with change, or nil.
func threadPushOf(c *inbox, change string) map[string]any {
	var last map[string]any
	for _, p := range c.pushes(ops.EventThread) {
		if p["change"] == change {
			last = p
		}
	}
	return last
}

func TestServerAddRemoveAndAnnounce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aliceConn, carolConn, carol2 := &inbox{}, &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	f.hub.Register(carolConn, "carol")
	f.hub.Register(carol2, "carol")
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	th := created.Thread.ID

	// The backend added carol in its store; without a token ECB asks its getThread as carol.
	res, err := f.svc.ServerAddMember(ctx, th, "carol", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Told != 2 {
		t.Fatalf("told %d of carol's 2 connections", res.Told)
	}
	for _, c := range []*inbox{carolConn, carol2} {
		p := threadPushOf(c, ops.ChangeAdded)
		if p == nil || p["threadId"] != th || p["thread"] == nil {
			t.Fatalf("carol's added push: %v", c.pushes(ops.EventThread))
		}
		tt, err := mustVerifier(t).VerifyThread(p["threadToken"].(string))
		if err != nil || tt.UserID != "carol" || tt.ThreadID != th {
			t.Fatalf("the pushed threadToken is not carol's for %s: %+v %v", th, tt, err)
		}
	}
	if got := aliceConn.pushes(ops.EventMember); len(got) != 1 || got[0]["userId"] != "carol" || got[0]["change"] != "joined" {
		t.Fatalf("alice, a listener, got member pushes %v", got)
	}
	if slices.Contains(carolConn.events(), ops.EventMember) {
		t.Fatal("carol, not listening, got a member push")
	}

	// A token the backend signed is pushed as given (a repeated add pushes again:
	// alice gets a second joined); one of another user is refused.
	tok, err := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: th, UserID: "carol", Access: 1})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.backend.calls
	if _, err := f.svc.ServerAddMember(ctx, th, "carol", tok); err != nil {
		t.Fatal(err)
	}
	if p := threadPushOf(carolConn, ops.ChangeAdded); p["threadToken"] != tok {
		t.Fatalf("pushed %v, not the given token", p["threadToken"])
	}
	if f.backend.calls != calls {
		t.Fatal("the backend was called although the token was given")
	}
	if _, err := f.svc.ServerAddMember(ctx, th, "dave", tok); codeOf(err) != "invalid_argument" {
		t.Fatalf("carol's token for dave: %v", err)
	}
	if _, err := f.svc.ServerAddMember(ctx, th, "carol", "not.a.token"); codeOf(err) != "invalid_argument" {
		t.Fatalf("a bad token: %v", err)
	}
	if _, err := f.svc.ServerAddMember(ctx, "t-unknown", "carol", ""); codeOf(err) != "conflict" {
		t.Fatalf("a thread the backend does not show carol: %v", err)
	}

	// carol listens; the backend removes her: detached at once, told; alice gets member removed (no by).
	tt, _ := mustVerifier(t).VerifyThread(tok)
	if _, err := f.hub.Attach(ctx, tt.ThreadID, carolConn); err != nil {
		t.Fatal(err)
	}
	rm, err := f.svc.ServerRemoveMember(ctx, th, "carol")
	if err != nil || rm.Detached != 1 {
		t.Fatalf("remove: %+v %v", rm, err)
	}
	if f.hub.Attached(carolConn) != 0 {
		t.Fatal("carol still listens after her removal")
	}
	for _, c := range []*inbox{carolConn, carol2} {
		if threadPushOf(c, ops.ChangeRemoved) == nil {
			t.Fatal("carol's connection was not told of her removal")
		}
	}
	if got := aliceConn.pushes(ops.EventMember); len(got) != 3 || got[2]["change"] != "removed" || got[2]["userId"] != "carol" || got[2]["by"] != nil {
		t.Fatalf("alice's member pushes %v", got)
	}
	before := len(carolConn.pushes(ops.EventMessage))
	if _, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "after"}}); err != nil {
		t.Fatal(err)
	}
	if len(carolConn.pushes(ops.EventMessage)) != before {
		t.Fatal("carol got a message of a thread she was removed from")
	}

	// Announce: alice and carol are online, erin is not; dave is named twice.
	an, err := f.svc.AnnounceThread(ctx, th, []string{"alice", "carol", "erin", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(an.Told, []string{"alice", "carol"}) || !slices.Equal(an.Offline, []string{"erin"}) || len(an.Refused) != 0 {
		t.Fatalf("announce %+v", an)
	}
	for user, c := range map[string]*inbox{"alice": aliceConn, "carol": carol2} {
		p := threadPushOf(c, ops.ChangeCreated)
		if p == nil {
			t.Fatalf("%s got no created push", user)
		}
		tt, err := mustVerifier(t).VerifyThread(p["threadToken"].(string))
		if err != nil || tt.UserID != user {
			t.Fatalf("%s's created push carries a token of %+v (%v)", user, tt, err)
		}
	}
	an, err = f.svc.AnnounceThread(ctx, "t-unknown", []string{"alice"})
	if err != nil || !slices.Equal(an.Refused, []string{"alice"}) || len(an.Told) != 0 {
		t.Fatalf("announce of a thread the backend refuses: %+v %v", an, err)
	}
}

var _ hub.Conn = (*inbox)(nil)

func TestServerCloseConversationAndAddAgent(t *testing.T) {
	s := newSupportStory(t)
	e := s.f.svc.Support()
	s.setAvail(t, "a1")
	s.req = s.ask(t, "v", "support")
	s.accept(t)
	agent := s.chatAgent(t)
	if _, err := s.f.svc.ServerAddAgent(s.ctx, s.req, agent); codeOf(err) != "conflict" {
		t.Fatalf("adding the chat's own agent: %v", err)
	}
	if _, err := s.f.svc.ServerAddAgent(s.ctx, "no-such", "a2"); codeOf(err) != "not_found" {
		t.Fatalf("an unknown request: %v", err)
	}
	s.setAvail(t, "a2")
	if _, err := s.f.svc.ServerAddAgent(s.ctx, s.req, "a2"); err != nil {
		t.Fatal(err)
	}
	if r := s.request(t); !slices.Contains(r.Conference, "a2") {
		t.Fatalf("a2 is not in the chat: %+v", r)
	}
	s.gates["a2"].await(t, ops.EventInvitation)

	res, err := s.f.svc.ServerCloseConversation(s.req)
	if err != nil || res.State != "closed" {
		t.Fatalf("close: %+v %v", res, err)
	}
	if _, ok := e.Request(s.req); ok {
		t.Fatal("the request is still live after the close")
	}
	for _, u := range []string{"v", "a1"} {
		s.gates[u].await(t, ops.EventSupportEnded)
	}
	// a1's slot is free again: the agent counts no chat.
	st, err := s.f.svc.AgentSetAvailability(s.ctx, s.callers["a1"], ops.SetAvailabilityRequest{Available: true})
	if err != nil || st.Chats != 0 {
		t.Fatalf("a1 after the close: %+v %v", st, err)
	}
	if _, err := s.f.svc.ServerCloseConversation(s.req); codeOf(err) != "not_found" {
		t.Fatalf("closing twice: %v", err)
	}

	// A waiting request is cancelled.
	if _, err := s.f.svc.AgentSetAvailability(s.ctx, s.callers["a1"], ops.SetAvailabilityRequest{Available: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.f.svc.AgentSetAvailability(s.ctx, s.callers["a2"], ops.SetAvailabilityRequest{Available: false}); err != nil {
		t.Fatal(err)
	}
	waiting := s.ask(t, "pv", "support")
	if res, err := s.f.svc.ServerCloseConversation(waiting); err != nil || res.State != string(support.StateCancelled) {
		t.Fatalf("close of a waiting request: %+v %v", res, err)
	}
	if _, err := s.f.svc.ServerAddAgent(s.ctx, waiting, "a2"); codeOf(err) != "not_found" {
		t.Fatalf("agent for an ended request: %v", err)
	}
}

func TestClosingASupportThreadEndsItsConversation(t *testing.T) {
	s := newSupportStory(t)
	s.setAvail(t, "a1")
	s.req = s.ask(t, "v", "support")
	s.accept(t)
	if ended, err := s.f.svc.EndThreadConversations("t-other"); err != nil || len(ended) != 0 {
		t.Fatalf("another thread ended %v %v", ended, err)
	}
	ended, err := s.f.svc.EndThreadConversations(s.thread)
	if err != nil || !slices.Equal(ended, []string{s.req}) {
		t.Fatalf("ended %v %v", ended, err)
	}
	if _, ok := s.f.svc.Support().Request(s.req); ok {
		t.Fatal("the conversation is live after its thread was closed")
	}
	st, err := s.f.svc.AgentSetAvailability(s.ctx, s.callers["a1"], ops.SetAvailabilityRequest{Available: true})
	if err != nil || st.Chats != 0 {
		t.Fatalf("a1 is still counted busy: %+v %v", st, err)
	}
}
