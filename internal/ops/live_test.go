package ops_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// thread creates a thread of alice with bob and makes bob's conn listen.
func (f *fixture) thread(tb testing.TB, alice, bob ops.Caller) (created *ops.CreateThreadResult, bobTok string) {
	tb.Helper()
	ctx := context.Background()
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		tb.Fatal(err)
	}
	bobTok, _ = f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: created.Thread.ID, UserID: "bob", Access: 3})
	if bob.Conn != nil {
		if _, err := f.svc.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok}); err != nil {
			tb.Fatal(err)
		}
	}
	return created, bobTok
}

// The automatic stop runs on the fake clock of a synctest bubble.
func TestTypingIsPushedAndExpiresByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { testTypingIsPushedAndExpiresByItself(t) })
}

func testTypingIsPushedAndExpiresByItself(t *testing.T) {
	f := newFixture(t)
	aliceConn, bobConn := &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	bob := f.caller(t, "bob", bobConn)
	created, _ := f.thread(t, alice, bob)
	before := len(bobConn.events())
	calls := f.backend.calls

	if _, err := f.svc.Typing(context.Background(), alice, ops.TypingRequest{ThreadToken: created.ThreadToken, State: "start"}); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if ev := bobConn.events(); !slices.Equal(ev[before:], []string{"typing"}) {
		t.Fatalf("bob got %v right after the start", ev[before:])
	}
	time.Sleep(f.svc.Config().TypingTimeout - time.Nanosecond)
	synctest.Wait()
	if ev := bobConn.events(); len(ev) != before+1 {
		t.Fatalf("the stop came before the typing timeout: %v", ev[before:])
	}
	time.Sleep(time.Nanosecond)
	synctest.Wait()
	ev := bobConn.events() // start, then the automatic stop after 200ms
	if !slices.Equal(ev[before:], []string{"typing", "typing"}) {
		t.Fatalf("bob got %v", ev[before:])
	}
	var start, stop ops.TypingPush
	_ = json.Unmarshal(bobConn.got[before].Payload(), &start)
	_ = json.Unmarshal(bobConn.got[before+1].Payload(), &stop)
	if start.State != "start" || stop.State != "stop" || start.UserID != "alice" || bobConn.got[before].Offset != 0 {
		t.Fatalf("typing pushes %+v %+v (offset %d: typing is not history)", start, stop, bobConn.got[before].Offset)
	}
	if f.backend.calls != calls {
		t.Error("typing reached the backend")
	}
	if slices.Contains(aliceConn.events(), "typing") {
		t.Error("the typist's own connection got the typing push")
	}
	if _, err := f.svc.Typing(context.Background(), alice, ops.TypingRequest{ThreadToken: created.ThreadToken, State: "dancing"}); codeOf(err) != apierr.InvalidArgument {
		t.Errorf("bad state: %v", err)
	}
}

func TestTypingFloodIsRateLimited(t *testing.T) {
	f := newFixture(t)
	alice := f.caller(t, "alice", &inbox{})
	created, _ := f.thread(t, alice, ops.Caller{})
	limited := 0
	for range 20 {
		_, err := f.svc.Typing(context.Background(), alice, ops.TypingRequest{ThreadToken: created.ThreadToken, State: "start"})
		if codeOf(err) == apierr.RateLimited {
			limited++
			if apierr.From(err).RetryAfter <= 0 {
				t.Fatal("rate_limited without retryAfter")
			}
		}
	}
	if limited < 10 {
		t.Fatalf("only %d of 20 instant typing events were limited", limited)
	}
}

func presenceOf(tb testing.TB, f *fixture, userID string) presence.Presence {
	tb.Helper()
	ps, err := f.svc.Presence().Get(context.Background(), []string{userID})
	if err != nil {
		tb.Fatal(err)
	}
	return ps[0]
}

func TestPresenceFollowsConnectionsAndVisibility(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aliceConn := &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	// alice learns her contacts (u00..u44 in memBackend) and so watches them.
	if _, err := f.svc.GetContacts(ctx, alice, ops.PageRequest{}); err != nil {
		t.Fatal(err)
	}
	u1a, u1b := &inbox{}, &inbox{}
	u1 := f.caller(t, "u01", u1a)
	ev := aliceConn.events() // presence pushes go out before Register returns
	var p presence.Presence
	_ = json.Unmarshal(aliceConn.got[len(ev)-1].Payload(), &p)
	if ev[len(ev)-1] != "presence" || p.UserID != "u01" || p.Show != "available" {
		t.Fatalf("alice got %v %+v when u01 connected", ev, p)
	}
	f.caller(t, "u01", u1b) // a second connection: no change, no push
	if _, err := f.svc.SetPresence(ctx, u1, ops.SetPresenceRequest{Show: "away", Status: "lunch"}); err != nil {
		t.Fatal(err)
	}
	// the other connection is still available: the most available wins
	if got := presenceOf(t, f, "u01"); got.Show != "available" {
		t.Fatalf("presence with one away and one available connection = %+v", got)
	}
	f.hub.Unregister(u1b)
	if got := presenceOf(t, f, "u01"); got.Show != "away" || got.Status != "lunch" {
		t.Fatalf("after the available connection left: %+v", got)
	}
	f.hub.Unregister(u1a) // gone without a goodbye
	got := presenceOf(t, f, "u01")
	if got.Show != "offline" || got.LastSeen == nil {
		t.Fatalf("after the last connection: %+v", got)
	}

	res, err := f.svc.GetPresence(ctx, alice, ops.GetPresenceRequest{UserIDs: []string{"u01", "u02"}})
	if err != nil || len(res.Presence) != 2 || res.Presence[0].Show != "offline" {
		t.Fatalf("getPresence: %+v %v", res, err)
	}
	if _, err := f.svc.GetPresence(ctx, alice, ops.GetPresenceRequest{UserIDs: []string{"stranger"}}); codeOf(err) != apierr.Forbidden {
		t.Errorf("presence of a stranger: %v", err)
	}
	if _, err := f.svc.SetPresence(ctx, alice, ops.SetPresenceRequest{Show: "offline"}); codeOf(err) != apierr.InvalidArgument {
		t.Errorf("show offline: %v", err)
	}
}

func TestSendMessageDedupesClientMessageID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bobConn := &inbox{}
	alice := f.caller(t, "alice", nil)
	bob := f.caller(t, "bob", bobConn)
	created, _ := f.thread(t, alice, bob)
	before := len(bobConn.events())
	req := ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "once", ClientMessageID: "cm-1"}}

	var wg sync.WaitGroup
	results := make([]*ops.SendMessageResult, 5)
	for i := range results {
		wg.Go(func() {
			r, err := f.svc.SendMessage(ctx, alice, req)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	for _, r := range results[1:] {
		if r.Message.ID != results[0].Message.ID || r.Message.Offset != results[0].Message.Offset {
			t.Fatalf("retries answered different messages: %+v vs %+v", r.Message, results[0].Message)
		}
	}
	if n := len(f.backend.messages[created.Thread.ID]); n != 2 {
		t.Fatalf("the backend stored %d messages, want 2 (first + one deduped)", n)
	}
	if got := len(bobConn.events()) - before; got != 1 {
		t.Fatalf("bob got %d pushes for one message", got)
	}
	// A failed attempt is not remembered: its retry reaches the backend.
	f.backend.failAdd = apierr.New(apierr.BackendUnavailable, "down")
	req.ClientMessageID = "cm-2"
	if _, err := f.svc.SendMessage(ctx, alice, req); err == nil {
		t.Fatal("expected a failure")
	}
	f.backend.failAdd = nil
	if _, err := f.svc.SendMessage(ctx, alice, req); err != nil {
		t.Fatalf("the retry after a failure: %v", err)
	}
}

func TestResumeDeliversExactlyWhatWasMissed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	oldConn := &inbox{}
	bob := f.caller(t, "bob", oldConn)
	created, bobTok := f.thread(t, alice, bob)
	page, _ := f.svc.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok})
	last := hub.Position{Epoch: page.Epoch, Offset: page.Offset}
	f.hub.Unregister(bob.Conn) // the connection dies
	for _, body := range []string{"m2", "m3", "m4"} {
		if _, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	newConn := &inbox{}
	bob2 := f.caller(t, "bob", newConn)
	res, err := f.svc.Resume(ctx, bob2, ops.ResumeRequest{Threads: []ops.ResumeThread{{ThreadToken: bobTok, Epoch: last.Epoch, Offset: last.Offset}}})
	if err != nil || !res.Threads[0].Recovered || res.Threads[0].Missed != 3 || res.Threads[0].Offset != 4 {
		t.Fatalf("resume = %+v %v", res, err)
	}
	var bodies []string
	for _, p := range newConn.got {
		var mp ops.MessagePush
		_ = json.Unmarshal(p.Payload(), &mp)
		bodies = append(bodies, mp.Message.Body)
	}
	if !slices.Equal(bodies, []string{"m2", "m3", "m4"}) {
		t.Fatalf("after resume bob got %v", bodies)
	}
	// now listening again
	_, _ = f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "m5"}})
	if len(newConn.events()) != 4 {
		t.Fatalf("not listening after resume: %v", newConn.events())
	}

	for name, pos := range map[string]ops.ResumeThread{
		"another epoch":   {ThreadToken: bobTok, Epoch: "x", Offset: 1},
		"from the future": {ThreadToken: bobTok, Epoch: last.Epoch, Offset: 99},
	} {
		res, err := f.svc.Resume(ctx, f.caller(t, "bob", &inbox{}), ops.ResumeRequest{Threads: []ops.ResumeThread{pos}})
		if err != nil || res.Threads[0].Recovered {
			t.Errorf("%s: %+v %v, want recovered false", name, res, err)
		}
	}
	// a thread the token does not cover: refused, nothing attached
	carolConn := &inbox{}
	carol := f.caller(t, "carol", carolConn)
	if _, err := f.svc.Resume(ctx, carol, ops.ResumeRequest{Threads: []ops.ResumeThread{{ThreadToken: bobTok, Epoch: last.Epoch}}}); codeOf(err) != apierr.Forbidden {
		t.Errorf("carol resuming with bob's token: %v", err)
	}
	if f.hub.Attached(carolConn) != 0 {
		t.Error("a refused resume attached the connection")
	}
}

func TestGroupMembershipChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aliceConn, bobConn, carolConn := &inbox{}, &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	bob := f.caller(t, "bob", bobConn)
	f.caller(t, "carol", carolConn)
	created, bobTok := f.thread(t, alice, bob)
	ownerTok, _ := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: created.Thread.ID, UserID: "alice", Access: 11})

	if _, err := f.svc.AddParticipants(ctx, bob, ops.AddParticipantsRequest{ThreadToken: bobTok, Participants: []string{"carol"}}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("a plain member adding people: %v", err)
	}
	res, err := f.svc.AddParticipants(ctx, alice, ops.AddParticipantsRequest{ThreadToken: ownerTok, Participants: []string{"carol"}})
	if err != nil || !slices.Equal(res.Added, []string{"carol"}) {
		t.Fatalf("add: %+v %v", res, err)
	}
	if ev := carolConn.events(); !slices.Contains(ev, "thread") {
		t.Errorf("carol was not told she was added: %v", ev)
	}
	if ev := bobConn.events(); ev[len(ev)-1] != "member" {
		t.Errorf("bob did not get the member push: %v", ev)
	}

	if _, err := f.svc.LeaveThread(ctx, bob, ops.LeaveThreadRequest{ThreadToken: bobTok}); err != nil {
		t.Fatal(err)
	}
	n := len(bobConn.events())
	_, _ = f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "after bob left"}})
	if len(bobConn.events()) != n {
		t.Error("bob still receives the thread after leaving")
	}
	if f.hub.Attached(bobConn) != 0 {
		t.Error("bob's connection still listens")
	}
}

func TestMarkReadIsPushedWithAnOffset(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aliceConn := &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	bob := f.caller(t, "bob", &inbox{})
	created, bobTok := f.thread(t, alice, bob)
	res, err := f.svc.MarkRead(ctx, bob, ops.MarkReadRequest{ThreadToken: bobTok, MessageID: created.Message.ID})
	if err != nil || res.Unread == nil || *res.Unread != 0 {
		t.Fatalf("markRead: %+v %v", res, err)
	}
	ev := aliceConn.events()
	last := aliceConn.got[len(ev)-1]
	var rp ops.ReadPush
	_ = json.Unmarshal(last.Payload(), &rp)
	if last.Event != "read" || rp.UserID != "bob" || rp.MessageID != created.Message.ID || rp.Offset != 2 {
		t.Fatalf("alice got %s %+v", last.Event, rp)
	}
	if _, err := f.svc.MarkRead(ctx, f.caller(t, "carol", nil), ops.MarkReadRequest{ThreadToken: bobTok, MessageID: "x"}); codeOf(err) != apierr.Forbidden {
		t.Errorf("markRead with another user's token: %v", err)
	}
}
