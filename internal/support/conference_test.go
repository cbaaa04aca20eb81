package support

import (
	"context"
	"slices"
	"testing"
)

// Joined and Left make the test recorder a ConferenceEvents.
func (r *recorder) Joined(req Request, userID, role, _ string) {
	r.add(event{kind: "joined-" + role, user: userID, requestID: req.ID})
}
func (r *recorder) Left(req Request, userID, role string) {
	r.add(event{kind: "left-" + role, user: userID, requestID: req.ID})
}

// chatWith starts a chat of visitor v with agent a and returns its request.
func (f *fixture) chatWith(t *testing.T, v, a string) Request {
	t.Helper()
	f.rec.take()
	r := f.ask(t, v)
	if _, err := f.e.Accept(context.Background(), a, lastOffer(t, f.rec.take(), a).offerID); err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	return r
}

func agentChats(f *fixture, id string) int {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	if a := f.e.agents[id]; a != nil {
		return len(a.chats)
	}
	return -1
}

func TestInviteAndLeave(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.avail(t, "a", true)
	r := f.chatWith(t, "v", "a")

	// Refusals: not the chat's agent, not available, the agent themselves.
	if _, err := f.e.Invite(ctx, "x", r.ID, "b"); kindOf(err) != KindNotFound {
		t.Fatalf("invite by a stranger: %v", err)
	}
	if _, err := f.e.Invite(ctx, "a", r.ID, "b"); kindOf(err) != KindConflict {
		t.Fatalf("invite of an unavailable agent: %v", err)
	}
	if _, err := f.e.Invite(ctx, "a", r.ID, "a"); kindOf(err) != KindConflict {
		t.Fatalf("invite of oneself: %v", err)
	}

	// b joins: invitation (conference) to b only, b's slot is taken, both are agents of the chat.
	f.avail(t, "b", true)
	f.rec.take()
	inv, err := f.e.Invite(ctx, "a", r.ID, "b")
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := f.e.Request(r.ID); !inv.Conference || inv.AgentID != "b" || cur.ThreadID == "" || inv.Request.ThreadID != cur.ThreadID {
		t.Fatalf("invitation %+v", inv)
	}
	if got := kinds(f.rec.take()); !slices.Equal(got, []string{"joined-agent:b", "invitation:b"}) {
		t.Fatalf("events %v", got)
	}
	if agentChats(f, "b") != 1 {
		t.Fatalf("b has %d chats", agentChats(f, "b"))
	}
	if _, err := f.e.Invite(ctx, "a", r.ID, "b"); kindOf(err) != KindConflict {
		t.Fatalf("second invite of b: %v", err)
	}
	if role, primary := f.e.Role(r.ID, "b"); role != RoleAgent || primary {
		t.Fatalf("b is %q primary=%v", role, primary)
	}
	if cs, _ := f.e.Conversations("support"); len(cs) != 1 || !slices.Equal(cs[0].Conference, []string{"b"}) {
		t.Fatalf("conversations %+v", cs)
	}
	// The chat cannot go back to the queue with b in it; a cannot leave it.
	if _, err := f.e.Transfer(ctx, "a", r.ID, ""); kindOf(err) != KindConflict {
		t.Fatalf("transfer to the queue with a conference: %v", err)
	}
	if err := f.e.Leave("a", r.ID); kindOf(err) != KindConflict {
		t.Fatalf("the chat's agent leaves: %v", err)
	}
	if err := f.e.Leave("v", r.ID); kindOf(err) != KindNotFound {
		t.Fatalf("the visitor leaves: %v", err)
	}

	// b leaves: slot freed, event.
	if err := f.e.Leave("b", r.ID); err != nil {
		t.Fatal(err)
	}
	if got := kinds(f.rec.take()); !slices.Equal(got, []string{"left-agent:b"}) {
		t.Fatalf("events %v", got)
	}
	if agentChats(f, "b") != 0 {
		t.Fatalf("b still has %d chats", agentChats(f, "b"))
	}

	// Invited again, b takes the chat over by a transfer: no second join, a's slot is freed.
	if _, err := f.e.Invite(ctx, "a", r.ID, "b"); err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	if _, err := f.e.Transfer(ctx, "a", r.ID, "b"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.e.Request(r.ID)
	if got.AgentID != "b" || len(got.Conference) != 0 || agentChats(f, "a") != 0 || agentChats(f, "b") != 1 {
		t.Fatalf("after the take-over: %+v, a %d, b %d", got, agentChats(f, "a"), agentChats(f, "b"))
	}
	if evs := f.rec.take(); slices.ContainsFunc(evs, func(e event) bool { return e.kind == "invitation" }) {
		t.Fatalf("an invitation on a take-over: %v", kinds(evs))
	}

	// a invited back; close by an invited agent ends the chat for all and frees both slots.
	if _, err := f.e.Invite(ctx, "b", r.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Close("a", r.ID); err != nil {
		t.Fatal(err)
	}
	if agentChats(f, "a") != 0 || agentChats(f, "b") != 0 {
		t.Fatalf("slots after close: a %d, b %d", agentChats(f, "a"), agentChats(f, "b"))
	}
}

func TestInviteRespectsLimitsAndWorkgroups(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.avail(t, "a", true)
	r := f.chatWith(t, "v", "a")
	one := 1
	if _, err := f.e.SetAvailability("b", []string{"support"}, true, &one); err != nil {
		t.Fatal(err)
	}
	f.chatWith(t, "w", "b") // b is full now
	if _, err := f.e.Invite(ctx, "a", r.ID, "b"); kindOf(err) != KindConflict {
		t.Fatalf("invite of a full agent: %v", err)
	}
	if err := f.e.SetWorkgroup(Workgroup{Name: "sales", Strategy: RoundRobin, OfferTimeout: 1e9, MaxChats: 1, Open: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.SetAvailability("c", []string{"sales"}, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Invite(ctx, "a", r.ID, "c"); kindOf(err) != KindForbidden {
		t.Fatalf("invite of another workgroup's agent: %v", err)
	}
	// A failing backend leaves nothing reserved.
	f.avail(t, "d", true)
	f.cr.mu.Lock()
	f.cr.fail = true
	f.cr.mu.Unlock()
	if _, err := f.e.Invite(ctx, "a", r.ID, "d"); err == nil {
		t.Fatal("invite with the backend down succeeded")
	}
	if agentChats(f, "d") != 0 {
		t.Fatalf("d keeps a reserved slot: %d", agentChats(f, "d"))
	}
	if got, _ := f.e.Request(r.ID); len(got.Conference) != 0 {
		t.Fatalf("conference after a failure: %v", got.Conference)
	}
}

func TestSupervisorJoinAndLeave(t *testing.T) {
	f := newFixture(t)
	f.avail(t, "a", true)
	r := f.chatWith(t, "v", "a")
	f.e.NoteSupervisor(r.ID, "s")
	f.e.NoteSupervisor(r.ID, "s") // once
	if got := kinds(f.rec.take()); !slices.Equal(got, []string{"joined-supervisor:s"}) {
		t.Fatalf("events %v", got)
	}
	if role, _ := f.e.Role(r.ID, "s"); role != RoleSupervisor {
		t.Fatalf("role %q", role)
	}
	if err := f.e.Leave("s", r.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.e.Request(r.ID); len(got.Supervisors) != 0 {
		t.Fatalf("supervisors %v", got.Supervisors)
	}
	if err := f.e.Leave("s", r.ID); kindOf(err) != KindNotFound {
		t.Fatalf("second leave: %v", err)
	}
}
