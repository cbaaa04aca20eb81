package serverapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// memberBackend is a backend whose store is a map of threads and members:
// the backend of these tests adds a member there, then calls the Server
// API, as a real one does. It signs with an Ed25519 key.
type memberBackend struct {
	ops.Backend // the calls these tests make none of
	signer      *ecbserver.TokenSigner
	mu          sync.Mutex
	members     map[string][]string // thread → members
	getThreads  int
}

var errUnused = errors.New("not used by these tests")

func newMemberBackend(tb testing.TB) (*memberBackend, ops.Verifier) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ecbserver.NewTokenSigner(priv, ecbserver.SignerOptions{Audience: "ecb-test"})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test", Algorithms: []string{auth.AlgEdDSA}}, pub)
	if err != nil {
		tb.Fatal(err)
	}
	return &memberBackend{signer: s, members: map[string][]string{}}, v
}

func (b *memberBackend) add(thread string, users ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.members[thread] = append(b.members[thread], users...)
}

func (b *memberBackend) GetThread(_ context.Context, req *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.getThreads++
	ms, ok := b.members[req.ThreadID]
	if !ok {
		return nil, apierr.New(apierr.NotFound, "no such thread")
	}
	if !slices.Contains(ms, req.UserID) {
		return nil, apierr.New(apierr.Forbidden, "not a member")
	}
	tok, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: req.ThreadID, UserID: req.UserID, Access: 3, Members: ms})
	return &ecbserver.GetThreadResponse{Thread: ecbserver.Thread{ID: req.ThreadID, Members: slices.Clone(ms)}, ThreadToken: tok, Messages: []ecbserver.Message{}}, err
}

func (b *memberBackend) CreateSupportThread(_ context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	id := "support-" + req.RequestID
	b.add(id, req.AgentID, req.VisitorID)
	vt, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.VisitorID, Access: 3})
	if err != nil {
		return nil, err
	}
	at, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.AgentID, Access: 11})
	return &ecbserver.CreateSupportThreadResponse{Thread: ecbserver.Thread{ID: id, Members: []string{req.AgentID, req.VisitorID}}, VisitorToken: vt, AgentToken: at}, err
}

func (b *memberBackend) AddParticipants(_ context.Context, req *ecbserver.AddParticipantsRequest) (*ecbserver.AddParticipantsResponse, error) {
	b.add(req.ThreadID, req.Participants...)
	tok, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: req.ThreadID, UserID: req.UserID, Access: 11})
	return &ecbserver.AddParticipantsResponse{Thread: ecbserver.Thread{ID: req.ThreadID}, ThreadToken: tok, Added: req.Participants}, err
}

func (b *memberBackend) LeaveThread(context.Context, *ecbserver.LeaveThreadRequest) (*ecbserver.LeaveThreadResponse, error) {
	return nil, errUnused
}

func TestMembersThroughTheSDK(t *testing.T) {
	b, v := newMemberBackend(t)
	e := newEnvFull(t, envOptions{backend: b, verifier: v})
	ctx := context.Background()
	c := e.client(t, allKey)
	alice, carol := &conn{}, &conn{}
	e.hub.Register(alice, "alice")
	e.hub.Register(carol, "carol")
	_, _ = e.hub.Attach(ctx, "t1", alice)
	b.add("t1", "alice", "bob")

	// Not added in the backend yet: its getThread refuses carol, nothing is pushed.
	if _, err := c.AddMember(ctx, "t1", "carol", ""); apiCode(err) != "conflict" {
		t.Fatalf("add before the backend did: %v", err)
	}
	if carol.count() != 0 || alice.count() != 0 {
		t.Fatal("a refused add pushed something")
	}
	b.add("t1", "carol")
	res, err := c.AddMember(ctx, "t1", "carol", "")
	if err != nil || res.Told != 1 || res.UserID != "carol" {
		t.Fatalf("add: %+v %v", res, err)
	}
	ev, data := carol.last()
	if ev != "thread" || data["change"] != "added" || data["threadId"] != "t1" {
		t.Fatalf("carol was told %s %v", ev, data)
	}
	tt, err := v.VerifyThread(data["threadToken"].(string))
	if err != nil || tt.UserID != "carol" || tt.ThreadID != "t1" {
		t.Fatalf("carol's pushed threadToken: %+v %v", tt, err)
	}
	if ev, data := alice.last(); ev != "member" || data["change"] != "joined" || data["userId"] != "carol" {
		t.Fatalf("alice was told %s %v", ev, data)
	}
	// With the backend's token in the body, ECB does not call the backend.
	tok, _ := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: "t1", UserID: "carol", Access: 1})
	calls := b.getThreads
	if _, err := c.AddMember(ctx, "t1", "carol", tok); err != nil || b.getThreads != calls {
		t.Fatalf("add with a token: %v (getThread calls %d → %d)", err, calls, b.getThreads)
	}
	if _, err := c.AddMember(ctx, "t2", "carol", tok); apiCode(err) != "invalid_argument" {
		t.Fatalf("a token of another thread: %v", err)
	}

	// Removal: carol listens, then stops at once and is told; alice gets member left.
	_, _ = e.hub.Attach(ctx, "t1", carol)
	rm, err := c.RemoveMember(ctx, "t1", "carol")
	if err != nil || rm.Detached != 1 {
		t.Fatalf("remove: %+v %v", rm, err)
	}
	if ev, data := carol.last(); ev != "thread" || data["change"] != "removed" {
		t.Fatalf("carol was told %s %v", ev, data)
	}
	if users := e.hub.ListenerUsers("t1"); !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("listeners after the removal: %v", users)
	}
	if ev, data := alice.last(); ev != "member" || data["change"] != "removed" || data["by"] != nil {
		t.Fatalf("alice was told %s %v", ev, data)
	}

	// Announce a thread the backend made on its own.
	b.add("t9", "alice", "bob")
	an, err := c.AnnounceThread(ctx, "t9", []string{"alice", "bob", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(an.Told, []string{"alice"}) || !slices.Equal(an.Offline, []string{"bob"}) || !slices.Equal(an.Refused, []string{"carol"}) {
		t.Fatalf("announce %+v", an)
	}
	if ev, data := alice.last(); ev != "thread" || data["change"] != "created" || data["threadToken"] == nil || data["thread"] == nil {
		t.Fatalf("alice was told %s %v", ev, data)
	}

	// Scopes and bad input.
	if _, err := e.client(t, accessKey).AddMember(ctx, "t1", "carol", ""); apiCode(err) != "forbidden" {
		t.Fatalf("add without threads:write: %v", err)
	}
	if _, err := e.client(t, presenceKey).AnnounceThread(ctx, "t1", []string{"alice"}); apiCode(err) != "forbidden" {
		t.Fatalf("announce without threads:write: %v", err)
	}
	for _, body := range []string{`{}`, `{"members": []}`, `{"members": [""]}`, `{"members": "alice"}`, `{"members": ["a"], "x": 1}`} {
		if st, got, _ := raw(t, "POST", e.url+"/server/v1/threads/t1/announce", "Bearer "+allKey, body); st != 400 {
			t.Fatalf("announce %s: %d %s", body, st, got)
		}
	}
	if st, got, _ := raw(t, "POST", e.url+"/server/v1/threads/t1/members/carol", "Bearer "+allKey, `{"threadToken": 1}`); st != 400 {
		t.Fatalf("a threadToken that is not a string: %d %s", st, got)
	}
	// A deleted thread takes no members.
	if _, err := c.ThreadEvent(ctx, "t1", ecbserver.ThreadDeleted, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMember(ctx, "t1", "carol", ""); apiCode(err) != "not_found" {
		t.Fatalf("add to a deleted thread: %v", err)
	}
	if _, err := c.RemoveMember(ctx, "t1", "carol"); apiCode(err) != "not_found" {
		t.Fatalf("remove from a deleted thread: %v", err)
	}
}

var _ hub.Conn = (*conn)(nil)

// supportChat brings a request of visitor v to a chat with agent a1 and
// returns its id and thread; a2 is a second available agent.
func supportChat(tb testing.TB, e *env, b *memberBackend, conns map[string]*conn) (requestID, threadID string, callers map[string]ops.Caller) {
	tb.Helper()
	ctx := context.Background()
	caller := func(id string, roles ...string) ops.Caller {
		p := ecbserver.UserTokenParams{ID: id, Name: id, Roles: roles}
		if len(roles) > 0 {
			p.Workgroups = []string{"support"}
		}
		tok, err := b.signer.SignUserToken(p)
		if err != nil {
			tb.Fatal(err)
		}
		u, err := e.svc.Authenticate(tok, "")
		if err != nil {
			tb.Fatal(err)
		}
		c := &conn{}
		conns[id] = c
		e.hub.Register(c, id)
		return ops.Caller{User: u, Conn: c}
	}
	v, a1, a2 := caller("v"), caller("a1", "agent"), caller("a2", "agent")
	callers = map[string]ops.Caller{"v": v, "a1": a1, "a2": a2}
	if _, err := e.svc.AgentSetAvailability(ctx, a1, ops.SetAvailabilityRequest{Available: true}); err != nil {
		tb.Fatal(err)
	}
	ask, err := e.svc.SupportAsk(ctx, v, ops.SupportAskRequest{Workgroup: "support", Question: "help?"})
	if err != nil {
		tb.Fatal(err)
	}
	r, _ := e.svc.Support().Request(ask.RequestID)
	acc, err := e.svc.OfferAccept(ctx, a1, ops.OfferRef{OfferID: r.OfferID})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.svc.AgentSetAvailability(ctx, a2, ops.SetAvailabilityRequest{Available: true}); err != nil {
		tb.Fatal(err)
	}
	return ask.RequestID, acc.Thread.ID, callers
}

// chatsOf is how many chats the engine counts agent in.
func chatsOf(tb testing.TB, e *env, agent ops.Caller) int {
	tb.Helper()
	st, err := e.svc.AgentSetAvailability(context.Background(), agent, ops.SetAvailabilityRequest{Available: true})
	if err != nil {
		tb.Fatal(err)
	}
	return st.Chats
}

func TestSupportConversationsThroughTheSDK(t *testing.T) {
	b, v := newMemberBackend(t)
	e := newEnvFull(t, envOptions{backend: b, verifier: v}, withSupport(t))
	ctx := context.Background()
	c := e.client(t, allKey)
	conns := map[string]*conn{}
	req, _, callers := supportChat(t, e, b, conns)

	if _, err := e.client(t, wgReadKey).CloseConversation(ctx, req); apiCode(err) != "forbidden" {
		t.Fatalf("close with workgroups:read: %v", err)
	}
	if _, err := c.AddConversationAgent(ctx, req, "a1"); apiCode(err) != "conflict" {
		t.Fatalf("adding the chat's agent: %v", err)
	}
	added, err := c.AddConversationAgent(ctx, req, "a2")
	if err != nil || added.Agent != "a2" {
		t.Fatalf("add agent: %+v %v", added, err)
	}
	if ev, _ := conns["a2"].last(); ev != ops.EventInvitation {
		t.Fatalf("a2 was told %s, not invited", ev)
	}
	convs, err := c.ListConversations(ctx, "support")
	if err != nil || len(convs) != 1 || !slices.Equal(convs[0].Agents, []string{"a1", "a2"}) {
		t.Fatalf("conversations: %+v %v", convs, err)
	}
	if n := chatsOf(t, e, callers["a2"]); n != 1 {
		t.Fatalf("a2 counts %d chats in the conference", n)
	}
	closed, err := c.CloseConversation(ctx, req)
	if err != nil || closed.State != "closed" {
		t.Fatalf("close: %+v %v", closed, err)
	}
	for _, u := range []string{"v", "a1", "a2"} {
		if ev, _ := conns[u].last(); ev != ops.EventSupportEnded {
			t.Fatalf("%s was told %s, not supportEnded", u, ev)
		}
	}
	if n := chatsOf(t, e, callers["a1"]) + chatsOf(t, e, callers["a2"]); n != 0 {
		t.Fatalf("the agents still count %d chats", n)
	}
	if convs, _ := c.ListConversations(ctx, "support"); len(convs) != 0 {
		t.Fatalf("conversations after the close: %+v", convs)
	}
	if _, err := c.CloseConversation(ctx, req); apiCode(err) != "not_found" {
		t.Fatalf("closing twice: %v", err)
	}
	if st, code, _ := raw(t, "POST", e.url+"/server/v1/support/conversations/"+req+"/agents", "Bearer "+allKey, `{"agent": ""}`); st != 400 || code != "invalid_argument" {
		t.Fatalf("an empty agent: %d %s", st, code)
	}
}

// Before issue 15, closing or deleting a support thread through the Server
// API left its conversation live: the agent counted busy, no callback.
func TestClosingTheSupportThreadEndsTheConversation(t *testing.T) {
	for _, change := range []string{ecbserver.ThreadClosed, ecbserver.ThreadDeleted} {
		t.Run(change, func(t *testing.T) {
			b, v := newMemberBackend(t)
			e := newEnvFull(t, envOptions{backend: b, verifier: v}, withSupport(t))
			ctx := context.Background()
			c := e.client(t, allKey)
			conns := map[string]*conn{}
			req, thread, callers := supportChat(t, e, b, conns)
			if n := chatsOf(t, e, callers["a1"]); n != 1 {
				t.Fatalf("a1 counts %d chats before", n)
			}
			res, err := c.ThreadEvent(ctx, thread, change, nil)
			if err != nil || !slices.Equal(res.EndedConversations, []string{req}) {
				t.Fatalf("%s: %+v %v", change, res, err)
			}
			if _, ok := e.svc.Support().Request(req); ok {
				t.Fatal("the conversation is still live")
			}
			found := false
			for _, p := range conns["v"].all() {
				found = found || p == ops.EventSupportEnded
			}
			if !found {
				t.Fatal("the visitor was not told the chat ended")
			}
			if n := chatsOf(t, e, callers["a1"]); n != 0 {
				t.Fatalf("a1 is still counted in %d chats", n)
			}
		})
	}
}

func (c *conn) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.got {
		out = append(out, p.Event)
	}
	return out
}
