package ops_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// nudgeBackend receives the callbacks through the SDK's handler and keeps
// the message.offline events, with repeats (a retry keeps its id).
type nudgeBackend struct {
	mu  sync.Mutex
	got []nudgeEvent
}

type nudgeEvent struct {
	ID    string
	Nudge ecbserver.OfflineNudge
}

func startNudgeBackend(tb testing.TB, secret []byte) (*nudgeBackend, string) {
	tb.Helper()
	b := &nudgeBackend{}
	srv := httptest.NewServer(ecbserver.NewCallbackHandler(secret, func(_ context.Context, ev ecbserver.CallbackEvent) error {
		if ev.Type != ecbserver.CallbackMessageOffline {
			return nil
		}
		var n ecbserver.OfflineNudge
		if err := json.Unmarshal(ev.Data, &n); err != nil {
			return err
		}
		b.mu.Lock()
		b.got = append(b.got, nudgeEvent{ev.ID, n})
		b.mu.Unlock()
		return nil
	}, ecbserver.CallbackHandlerOptions{}))
	tb.Cleanup(srv.Close)
	return b, srv.URL + ecbserver.PathCallbacks
}

// of returns the nudges of threadID so far.
func (b *nudgeBackend) of(threadID string) []nudgeEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []nudgeEvent
	for _, e := range b.got {
		if e.Nudge.ThreadID == threadID {
			out = append(out, e)
		}
	}
	return out
}

// await waits until threadID has n nudges, then a window more, and fails
// unless it has exactly n.
func (b *nudgeBackend) await(tb testing.TB, threadID string, n int, window time.Duration) []nudgeEvent {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(b.of(threadID)) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %d nudges, want %d", threadID, len(b.of(threadID)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(window + 200*time.Millisecond) // a later batch (another node's) closes within a window
	got := b.of(threadID)
	if len(got) != n {
		tb.Fatalf("%s: %d nudges, want %d: %+v", threadID, len(got), n, got)
	}
	return got
}

// mentionBackend stamps the mentions the test chose on the messages it
// stores (what a contract 1.6 backend answers, Message.mentions).
type mentionBackend struct {
	*memBackend
	mu       sync.Mutex
	mentions map[string][]string // body → mentions
}

func (b *mentionBackend) AddThreadMessage(ctx context.Context, req *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	resp, err := b.memBackend.AddThreadMessage(ctx, req)
	if err == nil {
		b.mu.Lock()
		resp.Message.Mentions = b.mentions[req.Body]
		b.mu.Unlock()
	}
	return resp, err
}

func (b *mentionBackend) CreateSupportThread(ctx context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	return supportBackend{b.memBackend}.CreateSupportThread(ctx, req)
}

const nudgeWindow = 150 * time.Millisecond

// offlineService is a Service on f's hub and backend (with mentions) that
// posts its callbacks to a nudgeBackend.
func offlineService(t *testing.T, f *fixture, mentions map[string][]string, window time.Duration) (*ops.Service, *nudgeBackend) {
	t.Helper()
	secret := []byte("nudge-secret")
	nb, url := startNudgeBackend(t, secret)
	off := false
	svc := ops.New(ops.Config{EnforceMembership: &off}, &mentionBackend{memBackend: f.backend, mentions: mentions}, mustVerifier(t), f.hub, slog.New(slog.DiscardHandler), nil)
	p := callbacks.New(context.Background(), callbacks.Config{URL: url, Secret: secret, InitialBackoff: 20 * time.Millisecond})
	svc.SetCallbacks(p)
	svc.EnableOfflineNudge(context.Background(), callbacks.BatcherConfig{Window: window})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.ShutdownOffline(ctx)
		_ = p.Shutdown(ctx)
	})
	f.svc = svc
	return svc, nb
}

// One node: createThread's first message nudges the members with no
// connection (never its author; bob is connected); two messages by two
// authors within a window make one nudge, whose users are every offline
// member (alice too: bob's message is not hers), whose mentioned are the
// union of the mentions without each message's author, and whose id comes
// from the last message. Once everyone is connected, a message with no
// mention nudges nobody.
func TestOfflineNudge(t *testing.T) {
	f := newFixture(t)
	const window = time.Second // two sends in one window, even on a loaded machine
	svc, nb := offlineService(t, f, map[string][]string{
		"hi @carol @bob": {"carol", "bob", "alice"},
		"yo @erin":       {"erin"},
	}, window)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil) // REST: no connection
	bobConn := &inbox{}
	bob := f.caller(t, "bob", bobConn)
	ct, err := svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob", "carol", "dave"}, Message: ops.MessageInput{Body: "first"}})
	if err != nil {
		t.Fatal(err)
	}
	th := ct.Thread.ID
	got := nb.await(t, th, 1, window)
	if n := got[0].Nudge; !slices.Equal(n.UserIDs, []string{"carol", "dave"}) || len(n.Mentioned) != 0 ||
		n.MessageID != ct.Message.ID || !slices.Equal(n.MessageIDs, []string{ct.Message.ID}) || n.Count != 1 ||
		got[0].ID != "ev_off_"+ct.Message.ID || n.Visibility != "" {
		t.Fatalf("createThread's nudge: %s %+v", got[0].ID, n)
	}

	tokenOf := func(user string) string {
		tok, err := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: th, UserID: user, Access: 3})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	send := func(c ops.Caller, body string) ecbserver.Message {
		t.Helper()
		res, err := svc.SendMessage(ctx, c, ops.SendMessageRequest{ThreadToken: tokenOf(c.User.ID), MessageInput: ops.MessageInput{Body: body}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Message
	}
	m2 := send(alice, "hi @carol @bob")
	m3 := send(bob, "yo @erin")
	got = nb.await(t, th, 2, window)
	if n := got[1].Nudge; !slices.Equal(n.UserIDs, []string{"alice", "carol", "dave"}) ||
		!slices.Equal(n.Mentioned, []string{"bob", "carol", "erin"}) || n.MessageID != m3.ID ||
		!slices.Equal(n.MessageIDs, []string{m2.ID, m3.ID}) || n.Count != 2 || got[1].ID != "ev_off_"+m3.ID {
		t.Fatalf("the batch's nudge: %s %+v", got[1].ID, n)
	}

	// Everyone connected (carol's stream is read, dave's is Socket.IO).
	for _, u := range []string{"alice", "carol", "dave"} {
		f.hub.Register(&inbox{}, u)
	}
	send(bob, "all here")
	nb.await(t, th, 2, window)
	// A mention still nudges the one mentioned, online or not.
	send(bob, "yo @erin")
	got = nb.await(t, th, 3, window)
	if n := got[2].Nudge; len(n.UserIDs) != 0 || !slices.Equal(n.Mentioned, []string{"erin"}) {
		t.Fatalf("the mention's nudge: %+v", n)
	}
	_ = bob
}

// A whisper nudges only the agents' side of the support chat: the agent's
// whisper nudges the supervisor who joined, the supervisor's the agent;
// the visitor, offline too, is never nudged for them (a message for
// everyone nudges her).
func TestOfflineNudgeWhisper(t *testing.T) {
	f := newFixture(t)
	svc, nb := offlineService(t, f, nil, nudgeWindow)
	if err := svc.EnableSupport([]support.Workgroup{{Name: "support", Strategy: support.RoundRobin, Open: true, OfferTimeout: time.Hour, MaxChats: 5}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	agentConn, aliceConn := &agentInbox{}, &inbox{}
	agent := f.roleCaller(t, "agent1", []string{"agent"}, agentConn)
	alice := f.caller(t, "alice", aliceConn)
	if _, err := svc.AgentSetAvailability(ctx, agent, ops.SetAvailabilityRequest{Available: true}); err != nil {
		t.Fatal(err)
	}
	asked, err := svc.SupportAsk(ctx, alice, ops.SupportAskRequest{Workgroup: "support", Question: "where is my order?"})
	if err != nil {
		t.Fatal(err)
	}
	offer := agentConn.lastOffer()
	acc, err := svc.OfferAccept(ctx, agent, ops.OfferRef{OfferID: offer.OfferID})
	if err != nil {
		t.Fatal(err)
	}
	th := acc.Thread.ID
	supConn := &agentInbox{}
	sup := f.roleCaller(t, "super", []string{"supervisor"}, supConn)
	joined, err := svc.SupportJoin(ctx, ops.Caller{User: sup.User}, ops.SupportRequestRef{RequestID: asked.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	f.hub.Unregister(agentConn) // everyone goes offline
	f.hub.Unregister(aliceConn)
	f.hub.Unregister(supConn)
	send := func(c ops.Caller, tok, body, visibility string) ecbserver.Message {
		t.Helper()
		res, err := svc.SendMessage(ctx, ops.Caller{User: c.User}, ops.SendMessageRequest{ThreadToken: tok,
			MessageInput: ops.MessageInput{Body: body}, Visibility: visibility})
		if err != nil {
			t.Fatal(err)
		}
		return res.Message
	}
	// The agent whispers: the supervisor who joined is nudged, alice not.
	w := send(agent, acc.ThreadToken, "psst", ecbserver.VisibilityAgents)
	got := nb.await(t, th, 1, nudgeWindow)
	if n := got[0].Nudge; !slices.Equal(n.UserIDs, []string{"super"}) || n.Visibility != ecbserver.VisibilityAgents || n.MessageID != w.ID {
		t.Fatalf("the agent's whisper's nudge: %+v", n)
	}
	w = send(sup, joined.ThreadToken, "psst back", ecbserver.VisibilityAgents)
	got = nb.await(t, th, 2, nudgeWindow)
	if n := got[1].Nudge; !slices.Equal(n.UserIDs, []string{"agent1"}) || n.Visibility != ecbserver.VisibilityAgents || n.MessageID != w.ID {
		t.Fatalf("the supervisor's whisper's nudge: %+v", n)
	}
	m := send(sup, joined.ThreadToken, "hello all", "")
	got = nb.await(t, th, 3, nudgeWindow)
	if n := got[2].Nudge; !slices.Equal(n.UserIDs, []string{"agent1", "alice"}) || n.Visibility != "" || n.MessageID != m.ID {
		t.Fatalf("the message's nudge: %+v", n)
	}

	// A whisper in a thread that is no support chat nudges nobody.
	ct, err := svc.CreateThread(ctx, agent, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "first"}})
	if err != nil {
		t.Fatal(err)
	}
	nb.await(t, ct.Thread.ID, 1, nudgeWindow)
	if _, err := svc.SendMessage(ctx, agent, ops.SendMessageRequest{ThreadToken: ct.ThreadToken,
		MessageInput: ops.MessageInput{Body: "psst"}, Visibility: ecbserver.VisibilityAgents}); err != nil {
		t.Fatal(err)
	}
	nb.await(t, ct.Thread.ID, 1, nudgeWindow)
}

type countingObserver struct {
	mu  sync.Mutex
	got map[string]int
}

func (o *countingObserver) CallbackFailed(typ, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got[typ+" "+reason]++
}

func (o *countingObserver) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got[key]
}

// A thread no node has seen (created behind ECB's back) gets its members
// from the backend's getThread; when that fails too, the batch is dropped
// and counted (members_unknown), not sent with a guess (not even with its
// mention).
func TestOfflineNudgeMembersFromTheBackend(t *testing.T) {
	f := newFixture(t)
	secret := []byte("nudge-secret")
	nb, url := startNudgeBackend(t, secret)
	obs := &countingObserver{got: map[string]int{}}
	mb := &mentionBackend{memBackend: f.backend, mentions: map[string][]string{"hi @dave": {"dave"}}}
	svc := ops.New(ops.Config{}, mb, mustVerifier(t), f.hub, slog.New(slog.DiscardHandler), nil)
	p := callbacks.New(context.Background(), callbacks.Config{URL: url, Secret: secret, Observer: obs})
	svc.SetCallbacks(p)
	svc.EnableOfflineNudge(context.Background(), callbacks.BatcherConfig{Window: nudgeWindow, Observer: obs})
	t.Cleanup(func() {
		_ = svc.ShutdownOffline(context.Background())
		_ = p.Shutdown(context.Background())
	})
	f.svc = svc
	ctx := context.Background()
	ct, err := f.backend.CreateThread(ctx, &ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"bob"}, Message: ecbserver.NewMessage(ops.MessageInput{Body: "behind ECB's back"})})
	if err != nil {
		t.Fatal(err)
	}
	th := ct.Thread.ID
	alice := f.caller(t, "alice", nil)
	send := func() ecbserver.Message {
		t.Helper()
		res, err := svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: ct.ThreadToken, MessageInput: ops.MessageInput{Body: "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Message
	}
	m := send()
	got := nb.await(t, th, 1, nudgeWindow)
	if n := got[0].Nudge; !slices.Equal(n.UserIDs, []string{"bob"}) || n.MessageID != m.ID {
		t.Fatalf("members from getThread: %+v", n)
	}

	ct2, err := f.backend.CreateThread(ctx, &ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"carol"}, Message: ecbserver.NewMessage(ops.MessageInput{Body: "again"})})
	if err != nil {
		t.Fatal(err)
	}
	f.backend.mu.Lock()
	delete(f.backend.threads, ct2.Thread.ID) // getThread answers not_found now
	f.backend.mu.Unlock()
	if _, err := svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: ct2.ThreadToken, MessageInput: ops.MessageInput{Body: "hi @dave"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for obs.count("message.offline members_unknown") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the batch without members was not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * nudgeWindow)
	if n := len(nb.of(ct2.Thread.ID)); n != 0 {
		t.Fatalf("%d nudges without members (dave's mention included)", n)
	}
}
