package ops_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// memBackend is an in-memory backend at the ops.Backend seam. The real
// contract is tested end to end in test/e2e against the reference backend.
type memBackend struct {
	mu       sync.Mutex
	signer   *ecbserver.TokenSigner
	threads  map[string]*ecbserver.Thread
	messages map[string][]ecbserver.Message
	failAdd  error
	calls    int
	lastVis  string
	lastAdd  ecbserver.AddThreadMessageRequest
	// people (people_test.go): nil contacts means everyone has u00..u44.
	contacts   map[string]map[string]bool
	properties map[string]map[string]string
	searched   string
}

func (b *memBackend) lastVisibility() string { b.mu.Lock(); defer b.mu.Unlock(); return b.lastVis }

func (b *memBackend) call() { b.mu.Lock(); b.calls++; b.mu.Unlock() }

func (b *memBackend) Authenticate(_ context.Context, req *ecbserver.AuthenticateRequest) (*ecbserver.AuthenticateResponse, error) {
	b.call()
	if !strings.HasPrefix(req.AccessToken, "access-") {
		return nil, apierr.New(apierr.Unauthenticated, "bad access token")
	}
	id := strings.TrimPrefix(req.AccessToken, "access-")
	tok, err := b.signer.SignUserToken(ecbserver.UserTokenParams{ID: id, Name: id})
	return &ecbserver.AuthenticateResponse{UserToken: tok, User: ecbserver.User{ID: id, Name: id}}, err
}

func (b *memBackend) GetContacts(_ context.Context, req *ecbserver.GetContactsRequest) (*ecbserver.GetContactsResponse, error) {
	b.call()
	if out, ok := b.contactsOf(req.UserID); ok {
		return &ecbserver.GetContactsResponse{Contacts: out}, nil
	}
	var out []ecbserver.User
	for i := range 45 {
		out = append(out, ecbserver.User{ID: fmt.Sprintf("u%02d", i), Name: "user"})
	}
	return &ecbserver.GetContactsResponse{Contacts: out}, nil
}

func (b *memBackend) GetThreads(context.Context, *ecbserver.GetThreadsRequest) (*ecbserver.GetThreadsResponse, error) {
	b.call()
	return &ecbserver.GetThreadsResponse{}, nil
}

func (b *memBackend) CreateThread(_ context.Context, req *ecbserver.CreateThreadRequest) (*ecbserver.CreateThreadResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	id := fmt.Sprintf("t%d", len(b.threads)+1)
	t := &ecbserver.Thread{ID: id, Members: append([]string{req.UserID}, req.Participants...)}
	b.threads[id] = t
	m := ecbserver.Message{ID: id + "-m1", ThreadID: id, AuthorID: req.UserID, Body: req.Message.Body}
	b.messages[id] = append(b.messages[id], m)
	tok, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.UserID, Access: 3})
	return &ecbserver.CreateThreadResponse{Thread: *t, ThreadToken: tok, Message: m}, err
}

func (b *memBackend) GetThread(_ context.Context, req *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.threads[req.ThreadID]
	if t == nil {
		return nil, apierr.New(apierr.NotFound, "no such thread")
	}
	tok, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: t.ID, UserID: req.UserID, Access: 3})
	return &ecbserver.GetThreadResponse{Thread: *t, ThreadToken: tok, Messages: slices.Clone(b.messages[t.ID])}, err
}

func (b *memBackend) AddThreadMessage(_ context.Context, req *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAdd != nil {
		return nil, b.failAdd
	}
	tok, err := b.signer.ReissueThreadToken(req, ecbserver.ThreadTokenParams{ThreadID: req.ThreadID, UserID: req.UserID, Access: 3})
	b.lastAdd = *req
	if req.ClientMessageID != "" {
		// A retry is answered with the message stored (the contract).
		for _, m := range b.messages[req.ThreadID] {
			if m.AuthorID == req.UserID && m.ClientMessageID == req.ClientMessageID {
				return &ecbserver.AddThreadMessageResponse{Message: m, ThreadToken: tok}, err
			}
		}
	}
	m := ecbserver.Message{ID: fmt.Sprintf("%s-m%d", req.ThreadID, len(b.messages[req.ThreadID])+1), ThreadID: req.ThreadID, AuthorID: req.UserID, Body: req.Body,
		ClientMessageID: req.ClientMessageID, Visibility: req.Visibility, Mentions: req.Mentions}
	b.lastVis = req.Visibility
	b.messages[req.ThreadID] = append(b.messages[req.ThreadID], m)
	return &ecbserver.AddThreadMessageResponse{Message: m, ThreadToken: tok}, err
}

func (b *memBackend) MarkRead(_ context.Context, req *ecbserver.MarkReadRequest) (*ecbserver.MarkReadResponse, error) {
	b.call()
	zero := 0
	return &ecbserver.MarkReadResponse{Unread: &zero}, nil
}

func (b *memBackend) AddParticipants(_ context.Context, req *ecbserver.AddParticipantsRequest) (*ecbserver.AddParticipantsResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.threads[req.ThreadID]
	var added []string
	for _, p := range req.Participants {
		if !slices.Contains(t.Members, p) {
			t.Members = append(t.Members, p)
			added = append(added, p)
		}
	}
	tok, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: t.ID, UserID: req.UserID, Access: 11})
	return &ecbserver.AddParticipantsResponse{Thread: *t, ThreadToken: tok, Added: added}, err
}

func (b *memBackend) LeaveThread(_ context.Context, req *ecbserver.LeaveThreadRequest) (*ecbserver.LeaveThreadResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.threads[req.ThreadID]
	t.Members = slices.DeleteFunc(t.Members, func(m string) bool { return m == req.UserID })
	return &ecbserver.LeaveThreadResponse{Thread: *t}, nil
}

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

type fixture struct {
	svc     *ops.Service
	hub     *hub.Hub
	backend *memBackend
	signer  *ecbserver.TokenSigner
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	signer, err := ecbserver.NewTokenSigner(testKey, ecbserver.SignerOptions{Audience: "ecb-test"})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	b := &memBackend{signer: signer, threads: map[string]*ecbserver.Thread{}, messages: map[string][]ecbserver.Message{}}
	h := hub.New(hub.Config{})
	return &fixture{svc: ops.New(ops.Config{MaxMessageBytes: 64, TypingTimeout: 200 * time.Millisecond}, b, v, h, slog.New(slog.DiscardHandler), nil), hub: h, backend: b, signer: signer}
}

func (f *fixture) caller(tb testing.TB, id string, conn hub.Conn) ops.Caller {
	tb.Helper()
	return f.callerWith(tb, ecbserver.UserTokenParams{ID: id, Name: id}, conn)
}

// callerWith is a caller whose userToken says p (roles, workgroups).
func (f *fixture) callerWith(tb testing.TB, p ecbserver.UserTokenParams, conn hub.Conn) ops.Caller {
	tb.Helper()
	id := p.ID
	tok, err := f.signer.SignUserToken(p)
	if err != nil {
		tb.Fatal(err)
	}
	u, err := f.svc.Authenticate(tok, "")
	if err != nil {
		tb.Fatal(err)
	}
	if conn != nil {
		f.hub.Register(conn, id)
	}
	return ops.Caller{User: u, Conn: conn}
}

type inbox struct {
	mu      sync.Mutex
	got     []*hub.Push
	arrived chan struct{} // signalled (never blocking) on each Deliver; see changedLocked
}

func (c *inbox) Deliver(p *hub.Push) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, p)
	if c.arrived != nil {
		select {
		case c.arrived <- struct{}{}:
		default: // a signal is pending already
		}
	}
	return true
}

// changedLocked returns a channel that is signalled at the next Deliver.
// c.mu must be held.
func (c *inbox) changedLocked() <-chan struct{} {
	if c.arrived == nil {
		c.arrived = make(chan struct{}, 1)
	}
	return c.arrived
}
func (c *inbox) Close(hub.Reason) {}
func (c *inbox) events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.got {
		out = append(out, p.Event)
	}
	return out
}

func codeOf(err error) apierr.Code {
	if err == nil {
		return ""
	}
	return apierr.From(err).Code
}

func TestPaging(t *testing.T) {
	f := newFixture(t)
	c := f.caller(t, "alice", nil)
	ctx := context.Background()
	cases := []struct {
		req           ops.PageRequest
		items, size   int
		hasMore       bool
		firstID, code string
	}{
		{ops.PageRequest{}, 20, 20, true, "u00", ""},
		{ops.PageRequest{Page: 3}, 5, 20, false, "u40", ""},
		{ops.PageRequest{Page: 4}, 0, 20, false, "", ""},
		{ops.PageRequest{PageSize: 1000}, 45, 100, false, "u00", ""},
		{ops.PageRequest{Page: 2, PageSize: 10}, 10, 10, true, "u10", ""},
		{ops.PageRequest{Page: -1}, 0, 0, false, "", "invalid_argument"},
	}
	for _, tc := range cases {
		p, err := f.svc.GetContacts(ctx, c, tc.req)
		if string(codeOf(err)) != tc.code {
			t.Fatalf("%+v: code %v", tc.req, err)
		}
		if err != nil {
			continue
		}
		if len(p.Items) != tc.items || p.PageSize != tc.size || p.HasMore != tc.hasMore || p.Total != 45 {
			t.Errorf("%+v: got %d items size %d more %v total %d", tc.req, len(p.Items), p.PageSize, p.HasMore, p.Total)
		}
		if tc.items > 0 && p.Items[0].ID != tc.firstID {
			t.Errorf("%+v: first %s want %s", tc.req, p.Items[0].ID, tc.firstID)
		}
	}
}

func TestSendMessagePushesToListenersButNotTheAuthorsConnection(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aliceConn, aliceOther, bobConn := &inbox{}, &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceConn)
	f.caller(t, "alice", aliceOther)
	bob := f.caller(t, "bob", bobConn)

	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob", "alice", "bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.backend.threads[created.Thread.ID].Members; !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("participants sent to the backend: %v (self and duplicates must be dropped)", got)
	}
	if ev := bobConn.events(); !slices.Equal(ev, []string{"thread"}) {
		t.Errorf("bob got %v, want the thread push", ev)
	}
	if ev := aliceOther.events(); !slices.Equal(ev, []string{"thread"}) {
		t.Errorf("alice's other connection got %v", ev)
	}
	if ev := aliceConn.events(); len(ev) != 0 {
		t.Errorf("the creating connection got %v; it gets the answer instead", ev)
	}

	bobTok, _ := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: created.Thread.ID, UserID: "bob", Access: 3})
	page, err := f.svc.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok})
	if err != nil || len(page.Messages) != 1 || page.Offset != 1 {
		t.Fatalf("bob's getThread: %+v %v", page, err)
	}
	res, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "second"}})
	if err != nil || res.Message.Offset != 2 {
		t.Fatalf("send: %+v %v", res, err)
	}
	if ev := bobConn.events(); !slices.Equal(ev, []string{"thread", "message"}) {
		t.Fatalf("bob got %v", ev)
	}
	var mp ops.MessagePush
	_ = json.Unmarshal(bobConn.got[1].Payload(), &mp)
	// The position travels beside the payload: the message inside carries none.
	if mp.Offset != 2 || mp.Message.Body != "second" || mp.Message.Offset != 0 || mp.Epoch != res.Epoch {
		t.Errorf("push = %+v", mp)
	}
	if ev := aliceConn.events(); len(ev) != 0 {
		t.Errorf("the author's connection got %v", ev)
	}
}

func TestNothingIsPushedWhenTheBackendFails(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bobConn := &inbox{}
	alice := f.caller(t, "alice", nil)
	bob := f.caller(t, "bob", bobConn)
	created, _ := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	bobTok, _ := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: created.Thread.ID, UserID: "bob", Access: 3})
	if _, err := f.svc.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok}); err != nil {
		t.Fatal(err)
	}
	before := len(bobConn.events())
	f.backend.failAdd = apierr.New(apierr.BackendUnavailable, "down")
	_, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "lost"}})
	if codeOf(err) != apierr.BackendUnavailable {
		t.Fatalf("err = %v", err)
	}
	if len(bobConn.events()) != before {
		t.Error("a message the backend did not store was pushed")
	}
	if p := mustPosition(t, f.hub, created.Thread.ID); p.Offset != 1 {
		t.Errorf("offset moved to %d without a stored message", p.Offset)
	}
}

func TestRefusedBeforeTheBackend(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	carol := f.caller(t, "carol", nil)
	created, _ := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	readOnly, _ := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: created.Thread.ID, UserID: "alice", Access: 1})
	noAccess, _ := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: created.Thread.ID, UserID: "alice", Access: 0})
	anonTok, _ := f.signer.SignAnonymousToken(ecbserver.AnonParams{Origins: []string{"https://shop.example"}})
	anon, err := f.svc.Authenticate(anonTok, "https://shop.example")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 65)

	calls := f.backend.calls
	cases := []struct {
		name string
		run  func() error
		want apierr.Code
	}{
		{"another user's threadToken", func() error {
			_, err := f.svc.GetThread(ctx, carol, ops.GetThreadRequest{ThreadToken: created.ThreadToken})
			return err
		}, apierr.Forbidden},
		{"read-only token writes", func() error {
			_, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: readOnly, MessageInput: ops.MessageInput{Body: "x"}})
			return err
		}, apierr.Forbidden},
		{"acc 0 reads", func() error {
			_, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: noAccess})
			return err
		}, apierr.Forbidden},
		{"token for another thread", func() error {
			_, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: created.ThreadToken, ThreadID: "t999"})
			return err
		}, apierr.InvalidArgument},
		{"garbage threadToken", func() error {
			_, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: "x.y.z"})
			return err
		}, apierr.Unauthenticated},
		{"message too long", func() error {
			_, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: long}})
			return err
		}, apierr.PayloadTooLarge},
		{"invalid UTF-8", func() error {
			_, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "\xff\xfe"}})
			return err
		}, apierr.InvalidArgument},
		{"invalid UTF-8 in a raw payload", func() error {
			// encoding/json alone would store "a\uFFFDb".
			_, err := f.svc.Call(ctx, alice, ops.OpSendMessage, json.RawMessage(`{"threadToken":"`+created.ThreadToken+"\",\"body\":\"a\xffb\"}"))
			return err
		}, apierr.InvalidArgument},
		{"history limit out of range", func() error {
			_, err := f.svc.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: created.ThreadToken, Limit: 5000})
			return err
		}, apierr.InvalidArgument},
		{"anonymous visitor lists contacts", func() error {
			_, err := f.svc.GetContacts(ctx, ops.Caller{User: anon}, ops.PageRequest{})
			return err
		}, apierr.Forbidden},
		{"anonymous visitor with another user's threadToken", func() error {
			_, err := f.svc.SendMessage(ctx, ops.Caller{User: anon}, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "x"}})
			return err
		}, apierr.Forbidden},
		{"no user", func() error {
			_, err := f.svc.GetThreads(ctx, ops.Caller{}, ops.GetThreadsRequest{})
			return err
		}, apierr.Unauthenticated},
	}
	for _, tc := range cases {
		if got := codeOf(tc.run()); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if f.backend.calls != calls {
		t.Errorf("refused requests made %d backend calls", f.backend.calls-calls)
	}
	if _, err := f.svc.Authenticate(anonTok, "https://evil.example"); codeOf(err) != apierr.Forbidden {
		t.Errorf("anonymous token from a foreign origin: %v", err)
	}
}

func TestGetUserToken(t *testing.T) {
	f := newFixture(t)
	res, err := f.svc.GetUserToken(context.Background(), ops.GetUserTokenRequest{AccessToken: "access-alice"})
	if err != nil || res.User.ID != "alice" {
		t.Fatalf("%+v %v", res, err)
	}
	if u, err := f.svc.Authenticate(res.UserToken, ""); err != nil || u.ID != "alice" {
		t.Fatalf("the userToken handed out does not verify: %v", err)
	}
	if _, err := f.svc.GetUserToken(context.Background(), ops.GetUserTokenRequest{}); codeOf(err) != apierr.InvalidArgument {
		t.Errorf("empty accessToken: %v", err)
	}
	if _, err := f.svc.GetUserToken(context.Background(), ops.GetUserTokenRequest{AccessToken: "forged"}); codeOf(err) != apierr.Unauthenticated {
		t.Errorf("bad accessToken: %v", err)
	}
}

// FuzzCall feeds any operation name and payload to the dispatcher: it must
// never panic, and every failure must be one of the closed list of codes.
func FuzzCall(f *testing.F) {
	for _, seed := range []struct{ op, payload string }{
		{"getContacts", `{"page":2,"pageSize":5}`},
		{"getThreads", `{}`},
		{"createThread", `{"participants":["bob"],"message":{"body":"hi","data":{"k":1}}}`},
		{"getThread", `{"threadToken":"a.b.c","limit":10}`},
		{"sendMessage", `{"threadToken":"","body":"x"}`},
		{"sendMessage", `{"threadToken":"a.b.c","body":"x","mentions":["bob","bob",""]}`},
		{"sendMessage", `{"threadToken":"a.b.c","body":"x","mentions":[1,null]}`},
		{"getUserToken", `{"accessToken":"access-alice"}`},
		{"stopListening", `{"threadId":"t1"}`},
		{"nope", `[]`},
		{"createThread", `{"participants":"bob"}`},
		{"getContacts", `null`},
		{"getContacts", `{"page":1e400}`},
		{"getWorkgroupStatus", `{"workgroup":"support"}`},
		{"support.ask", `{"workgroup":"support","question":"q","metadata":{"k":"v"},"operationId":"op"}`},
		{"support.cancel", `{"requestId":"req-1"}`},
		{"support.close", `{"requestId":"req-1"}`},
		{"agent.setAvailability", `{"available":true,"maxChats":2}`},
		{"offer.accept", `{"offerId":"off-1"}`},
		{"offer.reject", `{"offerId":"off-1"}`},
		{"support.conversations", `{"workgroup":"support"}`},
		{"support.monitor", `{"requestId":"req-1"}`},
		{"support.join", `{"requestId":"req-1"}`},
		{"support.transfer", `{"requestId":"req-1","toAgent":"agent2"}`},
		{"support.invite", `{"requestId":"req-1","agent":"agent2"}`},
		{"support.leave", `{"requestId":"req-1"}`},
		{"support.invite", `{"requestId":1}`},
		{"joinThread", `{"threadId":"t_lobby"}`},
		{"getThreads", `{"public":true}`},
		{"removeParticipant", `{"threadToken":"a.b.c","userId":"bob"}`},
		{"updateThread", `{"threadToken":"a.b.c","subject":"s","data":null}`},
		{"deleteMessage", `{"threadToken":"a.b.c","messageId":"m"}`},
		{"deleteThread", `{"threadToken":"a.b.c"}`},
		{"setAccess", `{"threadToken":"a.b.c","userId":"bob","acc":0,"ttlSeconds":3600}`},
	} {
		f.Add(seed.op, []byte(seed.payload))
	}
	fx := newFixture(f)
	if err := fx.svc.EnableSupport([]support.Workgroup{{Name: "support", Strategy: support.RoundRobin, OfferTimeout: time.Second, MaxChats: 2, Open: true}}, time.Second); err != nil {
		f.Fatal(err)
	}
	// A staff member (agent and supervisor of the workgroup), so that the
	// support operations get past the caller checks.
	caller := fx.callerWith(f, ecbserver.UserTokenParams{ID: "alice", Name: "alice", Roles: []string{"agent", "supervisor"}, Workgroups: []string{"support"}}, &inbox{})
	f.Fuzz(func(t *testing.T, op string, payload []byte) {
		_, err := fx.svc.Call(context.Background(), caller, op, payload)
		if err != nil && !slices.Contains(apierr.Codes, apierr.From(err).Code) {
			t.Fatalf("code %q is not in the closed list", apierr.From(err).Code)
		}
	})
}

func mustPosition(tb testing.TB, h *hub.Hub, threadID string) hub.Position {
	tb.Helper()
	pos, err := h.Position(context.Background(), threadID)
	if err != nil {
		tb.Fatal(err)
	}
	return pos
}
