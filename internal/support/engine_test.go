package support

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// The user-side state diagram: Start --Join--> Queued --Status--> Queued
// --Invitation--> Chat room, and Queued --Leave--> Start.
func TestUserStateDiagram(t *testing.T) {
	f := newFixture(t)
	r1 := f.ask(t, "v1")
	r2 := f.ask(t, "v2")
	evs := f.rec.take()
	want := []event{
		{kind: "queue", user: "v1", requestID: r1.ID, position: 1},
		{kind: "queue", user: "v2", requestID: r2.ID, position: 2},
	}
	if !slices.Equal(evs, want) {
		t.Fatalf("events = %+v, want %+v", evs, want)
	}
	// Leave: v1 cancels; v2 moves up (a Status push).
	if err := f.e.Cancel("v1", r1.ID); err != nil {
		t.Fatal(err)
	}
	evs = f.rec.take()
	if !slices.Contains(evs, event{kind: "ended", user: "v1", requestID: r1.ID, state: StateCancelled}) ||
		!slices.Contains(evs, event{kind: "queue", user: "v2", requestID: r2.ID, position: 1}) {
		t.Fatalf("after cancel: %+v", evs)
	}
	// Invitation: an agent comes, gets the offer, accepts.
	f.avail(t, "a1", true)
	o := lastOffer(t, f.rec.take(), "a1")
	inv, err := f.e.Accept(context.Background(), "a1", o.offerID)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Thread.VisitorToken != "vt-v2" || inv.Thread.AgentToken != "at-a1" || inv.Request.State != StateChat {
		t.Fatalf("invitation = %+v", inv)
	}
	evs = f.rec.take()
	if !slices.Contains(evs, event{kind: "invitation", user: "a1", requestID: r2.ID, toVisitor: true, toAgent: true}) {
		t.Fatalf("no invitation: %+v", evs)
	}
	if err := f.e.Cancel("v2", r2.ID); err == nil {
		t.Fatal("cancel of a chat succeeded")
	}
}

// The expert-side state diagram: Offer Pending --Reject/Revoke--> Start,
// Offer Pending --Accept--> Chat Pending --Revoke--> Start, Chat Pending
// --Invite--> Chat room.
func TestExpertStateDiagram(t *testing.T) {
	f := newFixture(t)
	f.avail(t, "a1", true)
	f.avail(t, "a2", true)
	r := f.ask(t, "v1")
	o1 := lastOffer(t, f.rec.take(), "a1")

	// Reject: passed on to a2.
	if err := f.e.Reject("a1", o1.offerID); err != nil {
		t.Fatal(err)
	}
	evs0 := f.rec.take()
	o2 := lastOffer(t, evs0, "a2")
	if o2.requestID != r.ID {
		t.Fatalf("offer to a2 is for %s", o2.requestID)
	}
	// The rejection is told (RejectEvents) before the request is offered again.
	if len(evs0) == 0 || evs0[0] != (event{kind: "rejected", user: "a1", offerID: o1.offerID, requestID: r.ID, state: StateOffered}) {
		t.Fatalf("rejection not told first: %+v", evs0)
	}
	// Revoke on timeout: a2 is told, and the request goes back to a1 only
	// once a1's rejection has cooled down (one offer timeout).
	f.clk.Advance(10 * time.Second)
	evs := f.rec.take()
	if !slices.Contains(evs, event{kind: "revoked", user: "a2", offerID: o2.offerID, requestID: r.ID, reason: ReasonTimeout}) {
		t.Fatalf("no revoke: %+v", evs)
	}
	o3 := lastOffer(t, evs, "a1")
	// Accepting a revoked offer is a conflict; someone else's is forbidden.
	var ee *Error
	if _, err := f.e.Accept(context.Background(), "a2", o2.offerID); !errors.As(err, &ee) || ee.Kind != KindConflict {
		t.Fatalf("accept revoked: %v", err)
	}
	if _, err := f.e.Accept(context.Background(), "a2", o3.offerID); !errors.As(err, &ee) || ee.Kind != KindForbidden {
		t.Fatalf("accept someone else's: %v", err)
	}
	if err := f.e.Reject("a1", "off-nope"); !errors.As(err, &ee) || ee.Kind != KindNotFound {
		t.Fatalf("reject unknown: %v", err)
	}

	// Chat Pending --Revoke--> Start: the thread cannot be created.
	f.cr.fail = true
	if _, err := f.e.Accept(context.Background(), "a1", o3.offerID); err == nil {
		t.Fatal("accept succeeded with a failing backend")
	}
	evs = f.rec.take()
	if !slices.Contains(evs, event{kind: "revoked", user: "a1", offerID: o3.offerID, requestID: r.ID, reason: ReasonFailed}) {
		t.Fatalf("no revoke after failure: %+v", evs)
	}
	// The request is offered again (a1 is free and not cooling down).
	o4 := lastOffer(t, evs, "a1")

	// Chat Pending --Revoke--> Start: the visitor cancels while the thread is created.
	f.cr.fail = false
	f.cr.hook = func() {
		if err := f.e.Cancel("v1", r.ID); err != nil {
			t.Error(err)
		}
	}
	if _, err := f.e.Accept(context.Background(), "a1", o4.offerID); !errors.As(err, &ee) || ee.Kind != KindConflict {
		t.Fatalf("accept of a cancelled request: %v", err)
	}
	evs = f.rec.take()
	if !slices.Contains(evs, event{kind: "revoked", user: "a1", offerID: o4.offerID, requestID: r.ID, reason: ReasonCancelled}) {
		t.Fatalf("no revoke after cancel: %+v", evs)
	}
	f.cr.hook = nil

	// Chat Pending --Invite--> Chat room.
	r2 := f.ask(t, "v2")
	o5 := lastOffer(t, f.rec.take(), "a2")
	if o5.requestID != r2.ID {
		t.Fatal("wrong request")
	}
	if _, err := f.e.Accept(context.Background(), "a2", o5.offerID); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Close("a2", r2.ID); err != nil {
		t.Fatal(err)
	}
}

func acceptAll(t *testing.T, f *fixture, evs []event) []string {
	t.Helper()
	var who []string
	for _, e := range evs {
		if e.kind == "offer" {
			if _, err := f.e.Accept(context.Background(), e.user, e.offerID); err != nil {
				t.Fatal(err)
			}
			who = append(who, e.user)
		}
	}
	return who
}

func TestRoundRobin(t *testing.T) {
	f := newFixture(t, Workgroup{Name: "support", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 5, Open: true})
	for _, a := range []string{"c", "a", "b"} {
		f.avail(t, a, true)
	}
	var got []string
	for _, v := range []string{"v1", "v2", "v3", "v4", "v5"} {
		f.ask(t, v)
		got = append(got, acceptAll(t, f, f.rec.take())...)
	}
	if want := []string{"a", "b", "c", "a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("offers went to %v, want %v", got, want)
	}
}

func TestLeastBusy(t *testing.T) {
	f := newFixture(t, Workgroup{Name: "support", Strategy: LeastBusy, OfferTimeout: time.Second, MaxChats: 5, Open: true})
	f.avail(t, "a", true)
	f.clk.Advance(time.Second)
	f.avail(t, "b", true)
	f.clk.Advance(time.Second)
	// Tie on chats (0): a has been idle longest.
	f.ask(t, "v1")
	if got := acceptAll(t, f, f.rec.take()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("first went to %v", got)
	}
	// a has 1 chat, b 0: b.
	f.clk.Advance(time.Second)
	f.ask(t, "v2")
	if got := acceptAll(t, f, f.rec.take()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("second went to %v", got)
	}
	// Both have 1; a accepted first so has been idle longer.
	f.clk.Advance(time.Second)
	f.ask(t, "v3")
	if got := acceptAll(t, f, f.rec.take()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("third went to %v", got)
	}
	// a has 2, b 1: b, even though a is idle longer.
	f.clk.Advance(time.Second)
	f.ask(t, "v4")
	if got := acceptAll(t, f, f.rec.take()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("fourth went to %v", got)
	}
}

func TestMaxChatsAndClose(t *testing.T) {
	f := newFixture(t)
	one := 1
	if _, err := f.e.SetAvailability("a", []string{"support"}, true, &one); err != nil {
		t.Fatal(err)
	}
	r1 := f.ask(t, "v1")
	acceptAll(t, f, f.rec.take())
	f.ask(t, "v2")
	if evs := f.rec.take(); slices.ContainsFunc(evs, func(e event) bool { return e.kind == "offer" }) {
		t.Fatalf("offer above max: %+v", evs)
	}
	if err := f.e.Close("v1", r1.ID); err != nil {
		t.Fatal(err)
	}
	lastOffer(t, f.rec.take(), "a")
}

func TestGracePeriod(t *testing.T) {
	f := newFixture(t)
	r := f.ask(t, "v1")
	f.ask(t, "v2")
	f.rec.take()
	f.e.VisitorGone("v1")
	f.clk.Advance(29 * time.Second)
	f.e.VisitorBack("v1")
	if evs := f.rec.take(); !slices.Equal(evs, []event{{kind: "queue", user: "v1", requestID: r.ID, position: 1}}) {
		t.Fatalf("on return: %+v", evs)
	}
	f.e.VisitorGone("v1")
	f.clk.Advance(30 * time.Second)
	evs := f.rec.take()
	if !slices.Contains(evs, event{kind: "ended", user: "v1", requestID: r.ID, state: StateDropped}) {
		t.Fatalf("not dropped: %+v", evs)
	}
	if got := f.e.Requests("v1"); len(got) != 0 {
		t.Fatalf("still there: %+v", got)
	}

	// An invitation made while the visitor is away is given on return.
	f.rec.take()
	f.e.VisitorGone("v2")
	f.avail(t, "a", true)
	acceptAll(t, f, f.rec.take())
	f.rec.take()
	f.e.VisitorBack("v2")
	evs = f.rec.take()
	if len(evs) != 1 || evs[0].kind != "invitation" || !evs[0].toVisitor || evs[0].toAgent {
		t.Fatalf("on return: %+v", evs)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t,
		Workgroup{Name: "support", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Open: true, RequiredFields: []string{"question", "email"}},
		Workgroup{Name: "closed", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1})
	kind := func(err error) Kind {
		var ee *Error
		if errors.As(err, &ee) {
			return ee.Kind
		}
		return 0
	}
	v := Visitor{ID: "v"}
	if _, _, _, err := f.e.Ask(v, "nope", "q", nil, ""); kind(err) != KindNotFound {
		t.Errorf("unknown workgroup: %v", err)
	}
	if _, _, _, err := f.e.Ask(v, "closed", "q", nil, ""); kind(err) != KindConflict {
		t.Errorf("closed workgroup: %v", err)
	}
	if _, _, _, err := f.e.Ask(v, "support", "", map[string]any{"email": "x"}, ""); kind(err) != KindInvalid {
		t.Errorf("no question: %v", err)
	}
	if _, _, _, err := f.e.Ask(v, "support", "q", map[string]any{"email": ""}, ""); kind(err) != KindInvalid {
		t.Errorf("empty field: %v", err)
	}
	r, _, _, err := f.e.Ask(v, "support", "q", map[string]any{"email": "x"}, "op-1")
	if err != nil || r.OperationID != "op-1" {
		t.Fatalf("ask: %+v %v", r, err)
	}
	if _, _, _, err := f.e.Ask(v, "support", "q", map[string]any{"email": "x"}, ""); kind(err) != KindConflict {
		t.Errorf("second ask: %v", err)
	}
	if err := f.e.Cancel("w", r.ID); kind(err) != KindNotFound {
		t.Errorf("cancel of another's: %v", err)
	}
	if _, err := f.e.SetAvailability("a", []string{"sales"}, true, nil); kind(err) != KindForbidden {
		t.Errorf("agent of no workgroup: %v", err)
	}
	neg := -1
	if _, err := f.e.SetAvailability("a", []string{"support"}, true, &neg); kind(err) != KindInvalid {
		t.Errorf("negative max: %v", err)
	}
	// An agent never gets their own request.
	if _, err := f.e.SetAvailability("v", []string{"support"}, true, nil); err != nil {
		t.Fatal(err)
	}
	if evs := f.rec.take(); slices.ContainsFunc(evs, func(e event) bool { return e.kind == "offer" }) {
		t.Fatalf("offered own request: %+v", evs)
	}
	st, err := f.e.Status("support")
	if err != nil || st.QueueLength != 1 || st.AgentsAvailable != 1 || !st.Open {
		t.Fatalf("status = %+v %v", st, err)
	}
	if err := (Workgroup{Name: "x", Strategy: "random", OfferTimeout: 1, MaxChats: 1}).Validate(); err == nil {
		t.Error("bad strategy accepted")
	}
}

func TestUnavailableRevokes(t *testing.T) {
	f := newFixture(t)
	f.avail(t, "a", true)
	r := f.ask(t, "v")
	o := lastOffer(t, f.rec.take(), "a")
	f.avail(t, "a", false)
	evs := f.rec.take()
	if !slices.Contains(evs, event{kind: "revoked", user: "a", offerID: o.offerID, requestID: r.ID, reason: ReasonUnavailable}) {
		t.Fatalf("%v", kinds(evs))
	}
	f.avail(t, "b", true)
	lastOffer(t, f.rec.take(), "b")
}
