package ops_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/internal/stacktest"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// modStack is the operations on the reference backend with the live store
// that the Server API writes (as internal/server wires it).
type modStack struct {
	*stacktest.Stack
	store *access.Store
}

func newModStack(t *testing.T) *modStack { return newModStackTB(t) }

func newModStackTB(t testing.TB) *modStack {
	t.Helper()
	s := stacktest.New(t, stacktest.Options{})
	st := access.New(access.Config{})
	s.Ops.SetGuards(ops.Guards{Access: st, Threads: st, Revocations: st, Writer: st})
	return &modStack{Stack: s, store: st}
}

func (m *modStack) caller(t *testing.T, user string, conn hub.Conn) ops.Caller {
	return m.callerTB(t, user, conn)
}

func (m *modStack) callerTB(t testing.TB, user string, conn hub.Conn) ops.Caller {
	t.Helper()
	u, err := m.Ops.Authenticate(m.UserToken(user), "")
	if err != nil {
		t.Fatal(err)
	}
	if conn != nil {
		m.Hub.Register(conn, user)
	}
	return ops.Caller{User: u, Conn: conn}
}

// lastPushWait bounds how long lastPush waits for a push that has not come:
// a guard against a hung test, not a measure of speed.
const lastPushWait = 10 * time.Second

// lastPush returns the payload of the last push of event c got, waiting for
// one to arrive, and fails the test when none comes.
func lastPush(t *testing.T, c *inbox, event string) map[string]any {
	t.Helper()
	timeout := time.NewTimer(lastPushWait)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		var found *hub.Push
		for i := len(c.got) - 1; i >= 0; i-- {
			if c.got[i].Event == event {
				found = c.got[i]
				break
			}
		}
		changed := c.changedLocked()
		c.mu.Unlock()
		if found != nil {
			var m map[string]any
			if err := json.Unmarshal(found.Payload(), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no %s push among %v", event, c.events())
			return nil
		}
	}
}

func TestJoinTheLobby(t *testing.T) {
	m := newModStack(t)
	ctx := context.Background()
	aliceConn, bobConn := &inbox{}, &inbox{}
	alice, bob := m.caller(t, "alice", aliceConn), m.caller(t, "bob", bobConn)

	page, err := m.Ops.GetThreads(ctx, alice, ops.GetThreadsRequest{Public: true})
	if err != nil || len(page.Items) != 1 || page.Items[0].Thread.ID != refbackend.LobbyID || page.Items[0].ThreadToken != "" {
		t.Fatalf("public threads %+v %v", page, err)
	}
	j, err := m.Ops.JoinThread(ctx, alice, ops.JoinThreadRequest{ThreadID: refbackend.LobbyID})
	if err != nil || !j.Joined || j.ThreadToken == "" {
		t.Fatalf("alice joins: %+v %v", j, err)
	}
	if _, err := m.Ops.GetThread(ctx, alice, ops.GetThreadRequest{ThreadToken: j.ThreadToken}); err != nil {
		t.Fatal(err)
	}
	jb, err := m.Ops.JoinThread(ctx, bob, ops.JoinThreadRequest{ThreadID: refbackend.LobbyID})
	if err != nil || !jb.Joined {
		t.Fatalf("bob joins: %+v %v", jb, err)
	}
	if p := lastPush(t, aliceConn, ops.EventMember); p["userId"] != "bob" || p["change"] != "joined" {
		t.Fatalf("alice was told %v", p)
	}

	// A private thread is the backend's to refuse; anonymous visitors never get that far.
	priv, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "private"}})
	if err != nil {
		t.Fatal(err)
	}
	carol := m.caller(t, "carol", nil)
	if _, err := m.Ops.JoinThread(ctx, carol, ops.JoinThreadRequest{ThreadID: priv.Thread.ID}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("join a private thread: %v", err)
	}
	if _, err := m.Ops.JoinThread(ctx, carol, ops.JoinThreadRequest{}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("join without threadId: %v", err)
	}

	// createThread {public: true} with no participants.
	pub, err := m.Ops.CreateThread(ctx, carol, ops.CreateThreadRequest{Public: true, Subject: "Open", Message: ops.MessageInput{Body: "come in"}})
	if err != nil || !pub.Thread.Public {
		t.Fatalf("public createThread: %+v %v", pub, err)
	}
	if j, err := m.Ops.JoinThread(ctx, bob, ops.JoinThreadRequest{ThreadID: pub.Thread.ID}); err != nil || !j.Joined {
		t.Fatalf("join the new public thread: %+v %v", j, err)
	}
}

func TestModerationOperations(t *testing.T) {
	m := newModStack(t)
	ctx := context.Background()
	aliceConn, bobConn, carolConn := &inbox{}, &inbox{}, &inbox{}
	alice := m.caller(t, "alice", aliceConn)
	bob := m.caller(t, "bob", bobConn)
	carol := m.caller(t, "carol", carolConn)
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob", "carol"}, Subject: "Team", Message: ops.MessageInput{Body: "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	id, ownerTok := created.Thread.ID, created.ThreadToken
	tokens := map[string]string{}
	for name, c := range map[string]ops.Caller{"bob": bob, "carol": carol} {
		g, err := m.Ops.GetThread(ctx, c, ops.GetThreadRequest{ThreadToken: m.sign(t, id, name, 3)})
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = g.ThreadToken
	}
	sent, err := m.Ops.SendMessage(ctx, carol, ops.SendMessageRequest{ThreadToken: tokens["carol"], MessageInput: ops.MessageInput{Body: "c1"}})
	if err != nil {
		t.Fatal(err)
	}

	// A plain member: forbidden before the backend for the admin operations.
	subject := "Renamed"
	for name, err := range map[string]error{
		"removeParticipant": second(m.Ops.RemoveParticipant(ctx, bob, ops.RemoveParticipantRequest{ThreadToken: tokens["bob"], UserID: "carol"})),
		"updateThread":      second(m.Ops.UpdateThread(ctx, bob, ops.UpdateThreadRequest{ThreadToken: tokens["bob"], Subject: &subject})),
		"deleteThread":      second(m.Ops.DeleteThread(ctx, bob, ops.DeleteThreadRequest{ThreadToken: tokens["bob"]})),
		"setAccess":         second(m.Ops.SetAccess(ctx, bob, ops.SetAccessRequest{ThreadToken: tokens["bob"], UserID: "carol", Acc: ptr(0)})),
	} {
		if codeOf(err) != apierr.Forbidden {
			t.Errorf("%s by a member: %v", name, err)
		}
	}
	// The backend decides authorship: bob may not delete carol's message.
	if _, err := m.Ops.DeleteMessage(ctx, bob, ops.DeleteMessageRequest{ThreadToken: tokens["bob"], MessageID: sent.Message.ID}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("bob deletes carol's message: %v", err)
	}

	// The owner updates: every listener hears it.
	if _, err := m.Ops.UpdateThread(ctx, alice, ops.UpdateThreadRequest{ThreadToken: ownerTok, Subject: &subject}); err != nil {
		t.Fatal(err)
	}
	if p := lastPush(t, bobConn, ops.EventThread); p["change"] != "updated" || p["thread"].(map[string]any)["subject"] != "Renamed" {
		t.Fatalf("bob was told %v", p)
	}
	// Carol deletes her own message: messageDeleted with an offset; the history shows it deleted.
	del, err := m.Ops.DeleteMessage(ctx, carol, ops.DeleteMessageRequest{ThreadToken: tokens["carol"], MessageID: sent.Message.ID})
	if err != nil || !del.Message.Deleted || del.Offset == 0 {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if p := lastPush(t, bobConn, ops.EventMessageDeleted); p["messageId"] != sent.Message.ID || p["by"] != "carol" {
		t.Fatalf("bob was told %v", p)
	}
	hist, err := m.Ops.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: tokens["bob"], Before: "", Limit: 10})
	if err != nil || len(hist.Messages) != 2 || !hist.Messages[1].Deleted || hist.Messages[1].Body != "" {
		t.Fatalf("history %+v %v", hist, err)
	}

	// setAccess: never above one's own bits, never on a member above oneself.
	if _, err := m.Ops.SetAccess(ctx, alice, ops.SetAccessRequest{ThreadToken: ownerTok, UserID: "bob", Acc: ptr(1 | 2 | 4)}); err != nil {
		t.Fatalf("the owner makes bob a moderator: %v", err)
	}
	modTok := m.sign(t, id, "bob", 1|2|4)
	if _, err := m.Ops.SetAccess(ctx, bob, ops.SetAccessRequest{ThreadToken: modTok, UserID: "carol", Acc: ptr(8)}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("a moderator grants owner: %v", err)
	}
	if _, err := m.Ops.SetAccess(ctx, bob, ops.SetAccessRequest{ThreadToken: modTok, UserID: "alice", Acc: ptr(0)}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("a moderator bans the owner: %v", err)
	}
	if _, err := m.Ops.SetAccess(ctx, bob, ops.SetAccessRequest{ThreadToken: modTok, UserID: "carol", Acc: ptr(1), TTLSeconds: -1}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("negative ttl: %v", err)
	}
	// A one-hour read-only for carol: live, with the Server API's effect.
	res, err := m.Ops.SetAccess(ctx, bob, ops.SetAccessRequest{ThreadToken: modTok, UserID: "carol", Acc: ptr(1), TTLSeconds: 3600})
	if err != nil || res.Acc != 1 || res.ExpiresAt == nil {
		t.Fatalf("setAccess: %+v %v", res, err)
	}
	if p := lastPush(t, carolConn, ops.EventThread); p["change"] != "access" || p["acc"] != float64(1) {
		t.Fatalf("carol was told %v", p)
	}
	if _, err := m.Ops.SendMessage(ctx, carol, ops.SendMessageRequest{ThreadToken: tokens["carol"], MessageInput: ops.MessageInput{Body: "still?"}}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("read-only carol writes: %v", err)
	}

	// A moderator cannot remove the owner (the backend says so); removes carol.
	if _, err := m.Ops.RemoveParticipant(ctx, bob, ops.RemoveParticipantRequest{ThreadToken: modTok, UserID: "alice"}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("remove the owner: %v", err)
	}
	rp, err := m.Ops.RemoveParticipant(ctx, alice, ops.RemoveParticipantRequest{ThreadToken: ownerTok, UserID: "carol"})
	if err != nil || slices.Contains(rp.Thread.Members, "carol") {
		t.Fatalf("remove carol: %+v %v", rp, err)
	}
	if p := lastPush(t, carolConn, ops.EventThread); p["change"] != "removed" || p["by"] != "alice" {
		t.Fatalf("carol was told %v", p)
	}
	if p := lastPush(t, bobConn, ops.EventMember); p["userId"] != "carol" || p["change"] != "removed" {
		t.Fatalf("bob was told %v", p)
	}
	// Carol gets nothing more, even with the token she still holds.
	carolConn.mu.Lock()
	before := len(carolConn.got)
	carolConn.mu.Unlock()
	if _, err := m.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: ownerTok, MessageInput: ops.MessageInput{Body: "after"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ops.Resume(ctx, carol, ops.ResumeRequest{Threads: []ops.ResumeThread{{ThreadToken: tokens["carol"], Epoch: created.Epoch, Offset: 1}}}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("a removed member resumes: %v", err)
	}
	carolConn.mu.Lock()
	after := len(carolConn.got)
	carolConn.mu.Unlock()
	if after != before {
		t.Fatalf("carol got %d pushes after her removal", after-before)
	}
	// Added back by the owner: the removal is lifted.
	if _, err := m.Ops.AddParticipants(ctx, alice, ops.AddParticipantsRequest{ThreadToken: ownerTok, Participants: []string{"carol"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.store.Lookup(id, "carol"); ok {
		t.Fatal("the removal override outlived the re-add")
	}

	// deleteThread: the owner bit only; members detached and told; deleted for ECB too.
	if _, err := m.Ops.DeleteThread(ctx, bob, ops.DeleteThreadRequest{ThreadToken: modTok}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("a moderator deletes the thread: %v", err)
	}
	if _, err := m.Ops.DeleteThread(ctx, alice, ops.DeleteThreadRequest{ThreadToken: ownerTok}); err != nil {
		t.Fatal(err)
	}
	if p := lastPush(t, bobConn, ops.EventThread); p["change"] != "deleted" {
		t.Fatalf("bob was told %v", p)
	}
	if n := m.Hub.Listeners(id); n != 0 {
		t.Fatalf("%d listeners after deleteThread", n)
	}
	if _, err := m.Ops.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: modTok}); codeOf(err) != apierr.NotFound {
		t.Fatalf("getThread after delete: %v", err)
	}
}

func TestModerationWithoutTheBackendCalls(t *testing.T) {
	f := newFixture(t) // memBackend: contract 1.0, no optional interfaces
	ctx := context.Background()
	alice := f.caller(t, "alice", &inbox{})
	tok := func(acc int) string { return f.threadToken(t, "t1", "alice", acc) }
	subject := "x"
	calls := func() map[string]error {
		return map[string]error{
			"removeParticipant": second(f.svc.RemoveParticipant(ctx, alice, ops.RemoveParticipantRequest{ThreadToken: tok(3), UserID: "bob"})),
			"updateThread":      second(f.svc.UpdateThread(ctx, alice, ops.UpdateThreadRequest{ThreadToken: tok(3), Subject: &subject})),
			"deleteMessage":     second(f.svc.DeleteMessage(ctx, alice, ops.DeleteMessageRequest{ThreadToken: tok(1), MessageID: "m"})),
			"deleteThread":      second(f.svc.DeleteThread(ctx, alice, ops.DeleteThreadRequest{ThreadToken: tok(7)})),
			"setAccess":         second(f.svc.SetAccess(ctx, alice, ops.SetAccessRequest{ThreadToken: tok(3), UserID: "bob", Acc: ptr(1)})),
		}
	}
	// A missing bit is forbidden before anything else, the backend's support included.
	for name, err := range calls() {
		if codeOf(err) != apierr.Forbidden {
			t.Errorf("%s without the bit: %v, want forbidden", name, err)
		}
	}
	for name, err := range map[string]error{
		"joinThread":                second(f.svc.JoinThread(ctx, alice, ops.JoinThreadRequest{ThreadID: "t1"})),
		"getThreads public":         second(f.svc.GetThreads(ctx, alice, ops.GetThreadsRequest{Public: true})),
		"removeParticipant":         second(f.svc.RemoveParticipant(ctx, alice, ops.RemoveParticipantRequest{ThreadToken: tok(15), UserID: "bob"})),
		"updateThread":              second(f.svc.UpdateThread(ctx, alice, ops.UpdateThreadRequest{ThreadToken: tok(15), Subject: &subject})),
		"deleteMessage":             second(f.svc.DeleteMessage(ctx, alice, ops.DeleteMessageRequest{ThreadToken: tok(15), MessageID: "m"})),
		"deleteThread":              second(f.svc.DeleteThread(ctx, alice, ops.DeleteThreadRequest{ThreadToken: tok(15)})),
		"setAccess (no live store)": second(f.svc.SetAccess(ctx, alice, ops.SetAccessRequest{ThreadToken: tok(15), UserID: "bob", Acc: ptr(1)})),
	} {
		if e := apierr.From(err); e.Code != apierr.NotFound {
			t.Errorf("%s: %v, want not_found", name, err)
		}
	}
	// An anonymous visitor is refused all of them.
	anonTok, _ := f.signer.SignAnonymousToken(ecbserver.AnonParams{Origins: []string{"https://shop.example"}})
	u, err := f.svc.Authenticate(anonTok, "https://shop.example")
	if err != nil {
		t.Fatal(err)
	}
	anon := ops.Caller{User: u}
	if _, err := f.svc.JoinThread(ctx, anon, ops.JoinThreadRequest{ThreadID: "t1"}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("anonymous joinThread: %v", err)
	}
	if _, err := f.svc.GetThreads(ctx, anon, ops.GetThreadsRequest{Public: true}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("anonymous public getThreads: %v", err)
	}
	f.backend.mu.Lock()
	n := f.backend.calls
	f.backend.mu.Unlock()
	if n != 0 {
		t.Fatalf("the backend was called %d times", n)
	}
}

func second[T any](_ T, err error) error { return err }

func ptr(v int) *int { return &v }

func (m *modStack) sign(t *testing.T, thread, user string, acc int) string {
	t.Helper()
	tok, err := m.Signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: thread, UserID: user, Access: acc})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// FuzzModerationCall decodes and runs the operations of issue 15 items 4
// and 5 on the reference backend, with "$TOK" in the payload replaced by the
// owner's valid threadToken so that the fuzzer gets past the token check:
// never a panic, every error a code of the closed list.
func FuzzModerationCall(f *testing.F) {
	for _, seed := range []struct{ op, payload string }{
		{"joinThread", `{"threadId":"t_lobby"}`},
		{"joinThread", `{"threadId":""}`},
		{"getThreads", `{"public":true,"page":1,"pageSize":5}`},
		{"getThreads", `{"public":"yes"}`},
		{"createThread", `{"public":true,"participants":[],"message":{"body":"x"}}`},
		{"removeParticipant", `{"threadToken":"$TOK","userId":"bob"}`},
		{"removeParticipant", `{"threadToken":"$TOK","userId":""}`},
		{"updateThread", `{"threadToken":"$TOK","subject":"s","data":{"k":1}}`},
		{"updateThread", `{"threadToken":"$TOK","data":[1]}`},
		{"updateThread", `{"threadToken":"$TOK","subject":7}`},
		{"deleteMessage", `{"threadToken":"$TOK","messageId":"m_x"}`},
		{"deleteThread", `{"threadToken":"$TOK","threadId":"other"}`},
		{"setAccess", `{"threadToken":"$TOK","userId":"bob","acc":1,"ttlSeconds":60}`},
		{"setAccess", `{"threadToken":"$TOK","userId":"bob","acc":99}`},
		{"setAccess", `{"threadToken":"$TOK","userId":"bob","acc":1,"ttlSeconds":99999999999}`},
		{"setAccess", `{"threadToken":"$TOK","userId":"bob"}`},
	} {
		f.Add(seed.op, []byte(seed.payload))
	}
	m := newModStackTB(f)
	ctx := context.Background()
	alice := m.callerTB(f, "alice", &inbox{})
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "a1"}})
	if err != nil {
		f.Fatal(err)
	}
	tok := created.ThreadToken
	f.Fuzz(func(t *testing.T, op string, payload []byte) {
		p := []byte(strings.ReplaceAll(string(payload), "$TOK", tok))
		_, err := m.Ops.Call(ctx, alice, op, p)
		if err != nil && !slices.Contains(apierr.Codes, apierr.From(err).Code) {
			t.Fatalf("code %q is not in the closed list", apierr.From(err).Code)
		}
	})
}
