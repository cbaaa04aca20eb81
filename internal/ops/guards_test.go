package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// guarded is a fixture whose Service consults a real access.Store.
func guarded(tb testing.TB) (*fixture, *access.Store) {
	tb.Helper()
	f := newFixture(tb)
	st := access.New(access.Config{})
	f.svc.SetGuards(ops.Guards{Access: st, Threads: st, Revocations: st})
	return f, st
}

func (f *fixture) threadToken(tb testing.TB, thread, user string, acc int) string {
	tb.Helper()
	tok, err := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: thread, UserID: user, Access: acc})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestOverrideReplacesTheTokensAccess(t *testing.T) {
	f, st := guarded(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	id, rw := created.Thread.ID, created.ThreadToken
	get := func(tok string) error {
		_, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: tok})
		return err
	}
	send := func(tok string) error {
		_, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: tok, MessageInput: ops.MessageInput{Body: "x"}})
		return err
	}
	cases := []struct {
		name      string
		acc       int // the override; -1 none
		tokenAcc  int
		get, send apierr.Code
	}{
		{"no override", -1, 3, "", ""},
		{"banned", 0, 3, apierr.Forbidden, apierr.Forbidden},
		{"read only", 1, 3, "", apierr.Forbidden},
		{"write without read", 2, 3, apierr.Forbidden, ""},
		{"raised above the token", 3, 1, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st.DeleteAccess(t.Context(), id, "alice")
			if tc.acc >= 0 {
				if _, err := st.SetAccess(t.Context(), id, "alice", auth.Access(tc.acc), 0); err != nil {
					t.Fatal(err)
				}
			}
			tok := rw
			if tc.tokenAcc != 3 {
				tok = f.threadToken(t, id, "alice", tc.tokenAcc)
			}
			if got := codeOf(get(tok)); got != tc.get {
				t.Errorf("getThread: %q, want %q", got, tc.get)
			}
			if got := codeOf(send(tok)); got != tc.send {
				t.Errorf("sendMessage: %q, want %q", got, tc.send)
			}
		})
	}
	// Another user's override does not touch alice.
	st.DeleteAccess(t.Context(), id, "alice")
	_, _ = st.SetAccess(t.Context(), id, "bob", 0, 0)
	if err := send(rw); err != nil {
		t.Errorf("bob's ban refused alice: %v", err)
	}
}

func TestOverrideAppliesWithoutEnforceMembership(t *testing.T) {
	f, st := guarded(t)
	off := false
	f.svc = ops.New(ops.Config{EnforceMembership: &off}, f.backend, mustVerifier(t), f.hub, nil, nil)
	f.svc.SetGuards(ops.Guards{Access: st})
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	ro := f.threadToken(t, created.Thread.ID, "alice", 1)
	if _, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: ro, MessageInput: ops.MessageInput{Body: "x"}}); err != nil {
		t.Fatalf("without enforcement the backend decides: %v", err)
	}
	_, _ = st.SetAccess(t.Context(), created.Thread.ID, "alice", 0, 0)
	if _, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "x"}}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("a ban applies even without enforceMembership: %v", err)
	}
}

func mustVerifier(tb testing.TB) *auth.Verifier {
	tb.Helper()
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestClosedAndDeletedThreads(t *testing.T) {
	f, st := guarded(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	id, tok := created.Thread.ID, created.ThreadToken
	_ = st.SetThreadStatus(t.Context(), id, access.StatusClosed)
	calls := f.backend.calls
	if _, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: tok, MessageInput: ops.MessageInput{Body: "x"}}); codeOf(err) != apierr.Conflict {
		t.Fatalf("send to a closed thread: %v", err)
	}
	if f.backend.calls != calls {
		t.Error("the backend was called for a closed thread")
	}
	if _, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: tok}); err != nil {
		t.Fatalf("read a closed thread: %v", err)
	}
	if _, err := f.svc.PublishSystemMessage(context.Background(), id, ops.SystemMessage{Body: "closed by support"}); err != nil {
		t.Fatalf("a system message into a closed thread: %v", err)
	}
	_ = st.SetThreadStatus(t.Context(), id, access.StatusDeleted)
	if _, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: tok}); codeOf(err) != apierr.NotFound {
		t.Fatalf("read a deleted thread: %v", err)
	}
	if _, err := f.svc.PublishSystemMessage(context.Background(), id, ops.SystemMessage{Body: "x"}); codeOf(err) != apierr.NotFound {
		t.Fatalf("a system message into a deleted thread: %v", err)
	}
}

func TestRevokedTokensAreRefusedOnEveryOperation(t *testing.T) {
	f, st := guarded(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil) // issued now
	if _, err := f.svc.GetContacts(ctx, alice, ops.PageRequest{}); err != nil {
		t.Fatal(err)
	}
	_, _ = st.Revoke(t.Context(), "alice", time.Now())
	if _, err := f.svc.GetContacts(ctx, alice, ops.PageRequest{}); codeOf(err) != apierr.Unauthenticated {
		t.Fatalf("an operation of a live connection with a revoked token: %v", err)
	}
	old, _ := f.signer.SignUserToken(ecbserver.UserTokenParams{ID: "alice", Name: "alice"})
	if _, err := f.svc.Authenticate(old, ""); codeOf(err) != apierr.Unauthenticated {
		t.Fatalf("authenticate with a token of the revoked second: %v", err)
	}
	bob := f.caller(t, "bob", nil)
	if _, err := f.svc.GetContacts(ctx, bob, ops.PageRequest{}); err != nil {
		t.Fatalf("another user: %v", err)
	}
	// A token issued after the revocation passes.
	u := *alice.User
	u.IssuedAt = time.Now().Add(2 * time.Second).Unix()
	if _, err := f.svc.GetContacts(ctx, ops.Caller{User: &u}, ops.PageRequest{}); err != nil {
		t.Fatalf("a token issued after the revocation: %v", err)
	}
	u.IssuedAt = 0
	if _, err := f.svc.GetContacts(ctx, ops.Caller{User: &u}, ops.PageRequest{}); codeOf(err) != apierr.Unauthenticated {
		t.Fatalf("a token without iat: %v", err)
	}
}

// limiterFunc is a Limiter at the seam.
type limiterFunc struct {
	op    func(string, hub.Conn) error
	admit func(string) error
}

func (l limiterFunc) AllowOp(u string, c hub.Conn) error { return l.op(u, c) }
func (l limiterFunc) AdmitConnection(u string) error     { return l.admit(u) }

func TestLimiterIsAskedBeforeEveryOperation(t *testing.T) {
	f := newFixture(t)
	var asked atomic.Int32
	limited := &apierr.Error{Code: apierr.RateLimited, Message: "slow down", RetryAfter: time.Second}
	f.svc.SetGuards(ops.Guards{Limiter: limiterFunc{
		op: func(u string, _ hub.Conn) error {
			if asked.Add(1) > 1 {
				return limited
			}
			return nil
		},
		admit: func(u string) error { return errors.New("no " + u) },
	}})
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	if _, err := f.svc.GetContacts(ctx, alice, ops.PageRequest{}); err != nil {
		t.Fatal(err)
	}
	calls := f.backend.calls
	_, err := f.svc.GetContacts(ctx, alice, ops.PageRequest{})
	if e := apierr.From(err); e.Code != apierr.RateLimited || e.RetryAfter != time.Second {
		t.Fatalf("second call: %v", err)
	}
	if f.backend.calls != calls {
		t.Error("a limited operation reached the backend")
	}
	if err := f.svc.AdmitConnection("bob"); err == nil || err.Error() != "no bob" {
		t.Fatalf("AdmitConnection: %v", err)
	}
}

// flipping refuses read from its second lookup on: the first lookup is the
// one of verifyThread, the second the re-check after the attach.
type flipping struct{ n atomic.Int32 }

func (f *flipping) Lookup(string, string) (auth.Access, bool) {
	if f.n.Add(1) == 1 {
		return 0, false
	}
	return 0, true
}

func TestBanRacingWithGetThreadLeavesNoListener(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	bobConn := &inbox{}
	bob := f.caller(t, "bob", bobConn)
	f.svc.SetGuards(ops.Guards{Access: &flipping{}})
	_, err = f.svc.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: f.threadToken(t, created.Thread.ID, "bob", 3)})
	if codeOf(err) != apierr.Forbidden {
		t.Fatalf("getThread during a ban: %v", err)
	}
	if n := f.hub.Listeners(created.Thread.ID); n != 0 {
		t.Fatalf("%d listeners left after the refused getThread", n)
	}
}

func TestServerAPIEffects(t *testing.T) {
	f, st := guarded(t)
	ctx := context.Background()
	aliceConn, aliceOther, bobConn := &inbox{}, &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	f.caller(t, "alice", aliceOther)
	bob := f.caller(t, "bob", bobConn)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Thread.ID
	if _, err := f.svc.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: f.threadToken(t, id, "bob", 3)}); err != nil {
		t.Fatal(err)
	}

	// A system message is pushed with the next offset to every listener.
	res, err := f.svc.PublishSystemMessage(context.Background(), id, ops.SystemMessage{Body: "maintenance at 5", Data: json.RawMessage(`{"k":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.AuthorID != "system" || res.Message.Offset != 2 || res.Message.ID == "" || res.Epoch != created.Epoch {
		t.Fatalf("system message %+v epoch %s", res.Message, res.Epoch)
	}
	if _, err := f.svc.PublishSystemMessage(context.Background(), id, ops.SystemMessage{Body: " "}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("blank system message: %v", err)
	}
	if _, err := f.svc.PublishSystemMessage(context.Background(), id, ops.SystemMessage{Body: "x", Data: json.RawMessage(`[1]`)}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("data not an object: %v", err)
	}

	// A ban detaches bob's connection and tells him.
	acc := auth.Access(0)
	_, _ = st.SetAccess(t.Context(), id, "bob", acc, time.Hour)
	if n, _ := f.svc.ApplyAccess(id, "bob", &acc, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("detached %d, want 1", n)
	}
	last := bobConn.got[len(bobConn.got)-1]
	var p ops.ThreadChangePush
	_ = json.Unmarshal(last.Payload(), &p)
	if last.Event != "thread" || p.Change != "access" || p.Acc == nil || *p.Acc != 0 || p.ExpiresAt == nil || last.Offset != 0 {
		t.Fatalf("bob was told %s %s", last.Event, last.Data)
	}
	before := len(bobConn.got)
	if _, err := f.svc.PublishSystemMessage(context.Background(), id, ops.SystemMessage{Body: "after the ban"}); err != nil {
		t.Fatal(err)
	}
	if len(bobConn.got) != before {
		t.Fatal("a banned listener still gets the thread's pushes")
	}
	// The override removed: told without acc.
	st.DeleteAccess(t.Context(), id, "bob")
	f.svc.ApplyAccess(id, "bob", nil, time.Time{})
	p = ops.ThreadChangePush{}
	_ = json.Unmarshal(bobConn.got[len(bobConn.got)-1].Payload(), &p)
	if p.Acc != nil {
		t.Fatalf("removal told acc %d", *p.Acc)
	}

	// Closed: the listeners are told; deleted: told and detached.
	if n, _ := f.svc.ThreadChanged(id, ops.ChangeClosed, nil); n != 1 {
		t.Fatalf("closed told %d listeners, want alice's 1", n)
	}
	if n, _ := f.svc.ThreadChanged(id, ops.ChangeDeleted, nil); n != 1 {
		t.Fatalf("deleted told %d", n)
	}
	if ev := aliceConn.events(); !slices.Equal(ev[len(ev)-3:], []string{"message", "thread", "thread"}) {
		t.Fatalf("alice's listening connection got %v", ev)
	}
	if n := f.hub.Listeners(id); n != 0 {
		t.Fatalf("%d listeners after delete", n)
	}

	if n, _ := f.svc.DisconnectUser("alice"); n != 2 {
		t.Fatalf("disconnected %d, want 2", n)
	}
}
