package ops_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/calltime"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// The Verifier caches a threadToken once it verified (auth.Config
// TokenCacheSize, on by default, as in the fixture). Every live decision is
// taken after the cache, on every call: a ban or a lowered access set after
// the token was cached, a closed thread and a revoked userToken are all
// refused with the very token the cache holds, and lifting the ban lets the
// same token through again (the override never changed the cached copy).
func TestCachedThreadTokenHonoursLiveDecisions(t *testing.T) {
	f, st := guarded(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	id, tok := created.Thread.ID, created.ThreadToken
	send := func(c ops.Caller) apierr.Code {
		_, err := f.svc.SendMessage(ctx, c, ops.SendMessageRequest{ThreadToken: tok, MessageInput: ops.MessageInput{Body: "x"}})
		return codeOf(err)
	}
	get := func(c ops.Caller) apierr.Code {
		_, err := f.svc.GetThread(ctx, c, ops.GetThreadRequest{ThreadToken: tok})
		return codeOf(err)
	}
	if got := send(alice); got != "" {
		t.Fatalf("first send (caches the token): %q", got)
	}
	steps := []struct {
		name      string
		do        func()
		send, get apierr.Code
	}{
		{"banned after the token was cached", func() { _, _ = st.SetAccess(t.Context(), id, "alice", 0, 0) }, apierr.Forbidden, apierr.Forbidden},
		{"lowered to read only", func() { _, _ = st.SetAccess(t.Context(), id, "alice", auth.AccessRead, 0) }, apierr.Forbidden, ""},
		{"override lifted", func() { st.DeleteAccess(t.Context(), id, "alice") }, "", ""},
		{"thread closed", func() { _ = st.SetThreadStatus(t.Context(), id, ops.ThreadClosed) }, apierr.Conflict, ""},
		{"thread reopened", func() { _ = st.SetThreadStatus(t.Context(), id, "") }, "", ""},
	}
	for _, s := range steps {
		s.do()
		if got := send(alice); got != s.send {
			t.Errorf("%s: sendMessage %q, want %q", s.name, got, s.send)
		}
		if got := get(alice); got != s.get {
			t.Errorf("%s: getThread %q, want %q", s.name, got, s.get)
		}
	}
	// bob presenting alice's cached token is refused (enforceMembership).
	if got := send(f.caller(t, "bob", nil)); got != apierr.Forbidden {
		t.Errorf("another user with a cached token: %q, want forbidden", got)
	}
	_, _ = st.Revoke(t.Context(), "alice", time.Now())
	if got := send(alice); got != apierr.Unauthenticated {
		t.Errorf("revoked userToken with a cached threadToken: %q, want unauthenticated", got)
	}
}

// ECB tells the backend the exp and acc of the author's threadToken; a
// backend that keeps it (contract 1.5) answers no token, and the author gets
// back the token they sent.
func TestSendMessageKeepsTheTokenTheBackendDidNotReissue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ThreadToken != created.ThreadToken {
		t.Fatalf("threadToken %q, want the author's own", res.ThreadToken)
	}
	req := f.backend.lastAdd
	if req.ThreadTokenAccess == nil || *req.ThreadTokenAccess != 3 || req.ThreadTokenExpiresAt == nil ||
		time.Until(*req.ThreadTokenExpiresAt) < 50*time.Minute {
		t.Fatalf("request described the token as exp %v acc %v", req.ThreadTokenExpiresAt, req.ThreadTokenAccess)
	}
	// A token about to expire is re-issued, and ECB passes the fresh one on.
	short := f.threadTokenTTL(t, created.Thread.ID, "alice", 3, 5*time.Minute)
	res, err = f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: short, MessageInput: ops.MessageInput{Body: "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ThreadToken == "" || res.ThreadToken == short {
		t.Fatal("a token 5 minutes from its exp was not re-issued")
	}
}

func (f *fixture) threadTokenTTL(tb testing.TB, thread, user string, acc int, ttl time.Duration) string {
	tb.Helper()
	s, err := ecbserver.NewTokenSigner(testKey, ecbserver.SignerOptions{Audience: "ecb-test", ThreadTTL: ttl})
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := s.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: thread, UserID: user, Access: acc})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// meteredBackend reports a fixed backend time for addThreadMessage, as the
// real client does for each call (package calltime).
type meteredBackend struct{ *memBackend }

func (b meteredBackend) AddThreadMessage(ctx context.Context, req *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	calltime.Add(ctx, 7*time.Second)
	return b.memBackend.AddThreadMessage(ctx, req)
}

type ownObserver struct{ total, own map[string]time.Duration }

func (o *ownObserver) Operation(op, _ string, d time.Duration)    { o.total[op] = d }
func (o *ownObserver) OperationOwn(op, _ string, d time.Duration) { o.own[op] = d }

// ECB's own share of an operation is its latency minus what its backend
// calls took: exactly, whatever the machine's speed.
func TestOperationOwnShareLeavesTheBackendOut(t *testing.T) {
	f := newFixture(t)
	obs := &ownObserver{total: map[string]time.Duration{}, own: map[string]time.Duration{}}
	f.svc = ops.New(ops.Config{}, meteredBackend{f.backend}, mustVerifier(t), f.hub, nil, obs)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "x"}}); err != nil {
		t.Fatal(err)
	}
	if d := obs.total[ops.OpSendMessage] - obs.own[ops.OpSendMessage]; d != 7*time.Second {
		t.Fatalf("sendMessage: latency - own = %v, want the backend's 7s", d)
	}
	if d := obs.total[ops.OpCreateThread] - obs.own[ops.OpCreateThread]; d != 0 {
		t.Fatalf("createThread (no metered call): latency - own = %v, want 0", d)
	}
}
