package ops_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// mentions returns the mention pushes c got, decoded.
func (c *inbox) mentions(t *testing.T) []ops.MentionPush {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ops.MentionPush
	for _, p := range c.got {
		if p.Event != ops.EventMention {
			continue
		}
		var m ops.MentionPush
		if err := json.Unmarshal(p.Payload(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestPushToUsersOncePerUser: the lists the backend answers (members, users
// added, users it kept as mentioned) are pushed to as given, but a repeated
// id is pushed to once and an empty one not at all, and skip gets nothing.
func TestPushToUsersOncePerUser(t *testing.T) {
	m := newModStack(t)
	bobConn, bobPhone, carolConn, agentConn := &inbox{}, &inbox{}, &inbox{}, &inbox{}
	m.caller(t, "bob", bobConn)
	m.caller(t, "bob", bobPhone)
	m.caller(t, "carol", carolConn)
	m.caller(t, "agent1", agentConn) // not named
	m.Ops.PushToUsers([]string{"bob", "", "carol", "bob", "carol"}, &hub.Push{Event: ops.EventMention, Data: []byte(`{}`)}, bobPhone)
	for name, c := range map[string]*inbox{"bob's first": bobConn, "carol's": carolConn} {
		if got := len(c.mentions(t)); got != 1 {
			t.Errorf("%s connection got %d pushes, want 1", name, got)
		}
	}
	for name, c := range map[string]*inbox{"bob's skipped": bobPhone, "agent1's": agentConn} {
		if got := len(c.mentions(t)); got != 0 {
			t.Errorf("%s connection got %d pushes, want none", name, got)
		}
	}
}

// TestMentionReachesEveryConnectionOfTheKeptUsers walks item 5 on the
// reference backend: bob, with two connections and listening to nothing,
// gets the mention push on both; a non-member, the author and repeats are
// dropped (the answer carries the kept list); carol, a member not
// mentioned, gets none; getThreads marks the thread mentioned for bob until
// he reads it.
func TestMentionReachesEveryConnectionOfTheKeptUsers(t *testing.T) {
	m := newModStack(t)
	ctx := context.Background()
	aliceConn, bobConn, bobPhone, carolConn := &inbox{}, &inbox{}, &inbox{}, &inbox{}
	alice := m.caller(t, "alice", aliceConn)
	bob := m.caller(t, "bob", bobConn)
	m.caller(t, "bob", bobPhone)
	carol := m.caller(t, "carol", carolConn)
	outsider := &inbox{}
	m.caller(t, "agent1", outsider) // mentioned, but no member: dropped
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob", "carol"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Thread.ID
	if m.Hub.Listeners(id) != 1 {
		t.Fatalf("%d listeners, want alice's only", m.Hub.Listeners(id))
	}
	sent, err := m.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "@bob look"},
		Mentions: []string{"bob", "agent1", "alice", "bob", "nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sent.Message.Mentions, []string{"bob"}) {
		t.Fatalf("answered mentions %v, want [bob]", sent.Message.Mentions)
	}
	for name, c := range map[string]*inbox{"bob's first": bobConn, "bob's second": bobPhone} {
		p := lastPush(t, c, ops.EventMention)
		msg, _ := p["message"].(map[string]any)
		if p["threadId"] != id || msg["id"] != sent.Message.ID || msg["body"] != "@bob look" {
			t.Fatalf("%s connection was told %v", name, p)
		}
	}
	if got := bobConn.mentions(t); len(got) != 1 {
		t.Fatalf("bob got %d mention pushes, want 1", len(got))
	}
	if got := carolConn.mentions(t); len(got) != 0 {
		t.Fatalf("carol, not mentioned, got %v", got)
	}
	if got := aliceConn.mentions(t); len(got) != 0 {
		t.Fatalf("alice, the author, got %v", got)
	}
	if got := outsider.mentions(t); len(got) != 0 {
		t.Fatalf("agent1, no member, got %v", got)
	}
	if slices.Contains(bobConn.events(), ops.EventMessage) {
		t.Fatal("bob, not listening, got the message push")
	}

	// The unread state: mentioned for bob until he reads past it.
	mentioned := func(c ops.Caller) bool {
		t.Helper()
		page, err := m.Ops.GetThreads(ctx, c, ops.GetThreadsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page.Items {
			if st.Thread.ID == id {
				if st.Thread.Mentioned == nil {
					t.Fatalf("%s's thread has no mentioned", c.User.ID)
				}
				return *st.Thread.Mentioned
			}
		}
		t.Fatalf("%s's threads do not list %s", c.User.ID, id)
		return false
	}
	if !mentioned(bob) || mentioned(carol) {
		t.Fatal("mentioned: bob not marked, or carol marked")
	}
	bobTok := m.sign(t, id, "bob", 3)
	if _, err := m.Ops.MarkRead(ctx, bob, ops.MarkReadRequest{ThreadToken: bobTok, MessageID: sent.Message.ID}); err != nil {
		t.Fatal(err)
	}
	if mentioned(bob) {
		t.Fatal("markRead did not clear bob's mention")
	}
}

// TestAWhisperMentionReachesAgentsOnly: a whisper's mention push goes only
// to agents' connections, and never to its author, whatever the backend kept.
func TestAWhisperMentionReachesAgentsOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	vConn, a1Conn, a2Conn, a2Visitor := &inbox{}, &agentInbox{}, &agentInbox{}, &inbox{}
	f.caller(t, "visitor", vConn)
	agent1 := f.roleCaller(t, "agent1", []string{"agent"}, a1Conn)
	f.roleCaller(t, "agent2", []string{"agent"}, a2Conn)
	f.hub.Register(a2Visitor, "agent2") // a connection of agent2 that does not see agents-only pushes
	ct, err := f.svc.CreateThread(ctx, agent1, ops.CreateThreadRequest{Participants: []string{"visitor", "agent2"}, Message: ops.MessageInput{Body: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	// This backend keeps every mention it is given: ECB still pushes a
	// whisper's mention to agents' connections only.
	if _, err := f.svc.SendMessage(ctx, agent1, ops.SendMessageRequest{ThreadToken: ct.ThreadToken, MessageInput: ops.MessageInput{Body: "@agent2"},
		Visibility: "agents", Mentions: []string{"agent2", "visitor", "agent1"}}); err != nil {
		t.Fatal(err)
	}
	if p := lastPush(t, &a2Conn.inbox, ops.EventMention); p["message"].(map[string]any)["visibility"] != "agents" {
		t.Fatalf("agent2 was told %v", p)
	}
	if got := vConn.mentions(t); len(got) != 0 {
		t.Fatalf("the visitor got a whisper's mention: %v", got)
	}
	if got := a2Visitor.mentions(t); len(got) != 0 {
		t.Fatalf("a connection that sees no whispers got one's mention: %v", got)
	}
	if got := a1Conn.mentions(t); len(got) != 0 {
		t.Fatalf("the author got their own mention: %v", got)
	}
}

// TestARetriedSendDoesNotMentionTwice: a retry of a sendMessage that
// reaches another node (another Service on the same broker, which has no
// memory of the first) is answered by the backend with the message it
// stored; its push is repeated (hub.Push.Repeated), and so is not its
// mention.
func TestARetriedSendDoesNotMentionTwice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bobConn := &inbox{}
	alice := f.caller(t, "alice", nil)
	f.caller(t, "bob", bobConn)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	other := ops.New(ops.Config{MaxMessageBytes: 64}, f.backend, v, f.hub, slog.New(slog.DiscardHandler), nil)
	tok, err := f.signer.SignUserToken(ecbserver.UserTokenParams{ID: "alice", Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := other.Authenticate(tok, "")
	if err != nil {
		t.Fatal(err)
	}
	req := ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "@bob", ClientMessageID: "c1"}, Mentions: []string{"bob"}}
	first, err := f.svc.SendMessage(ctx, alice, req)
	if err != nil {
		t.Fatal(err)
	}
	lastPush(t, bobConn, ops.EventMention)
	retry, err := other.SendMessage(ctx, ops.Caller{User: u}, req)
	if err != nil || retry.Message.ID != first.Message.ID || retry.Message.Offset != first.Message.Offset {
		t.Fatalf("retry %+v %v, first %+v", retry, err, first)
	}
	// A new message mentions bob again: what follows the retry is a fresh
	// mention, so the count below is not only waiting too little.
	req.ClientMessageID, req.Body = "c2", "@bob again"
	if _, err := other.SendMessage(ctx, ops.Caller{User: u}, req); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(lastPushWait)
	for len(bobConn.mentions(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := bobConn.mentions(t)
	if len(got) != 2 || got[0].Message.ID != first.Message.ID || got[1].Message.Body != "@bob again" {
		t.Fatalf("bob's mention pushes %+v, want the first message's and the third's, once each", got)
	}
}

// TestMentionsRefusedBeforeTheBackend: too many mentions, an empty or
// overlong id, a non-string id are invalid_argument, and the backend is not
// asked; repeats are collapsed before the backend sees them.
func TestMentionsRefusedBeforeTheBackend(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	created, err := f.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	many := make([]string, ecbserver.MaxMentions+1)
	for i := range many {
		many[i] = "u" + strings.Repeat("x", i)
	}
	send := func(mentions []string) error {
		_, err := f.svc.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, MessageInput: ops.MessageInput{Body: "x"}, Mentions: mentions})
		return err
	}
	calls := f.backend.calls
	for name, run := range map[string]func() error{
		"21 mentions":   func() error { return send(many) },
		"an empty id":   func() error { return send([]string{"bob", ""}) },
		"a 129-byte id": func() error { return send([]string{strings.Repeat("b", ecbserver.MaxMentionIDBytes+1)}) },
		"a number": func() error {
			_, err := f.svc.Call(ctx, alice, ops.OpSendMessage, json.RawMessage(`{"threadToken":"`+created.ThreadToken+`","body":"x","mentions":[7]}`))
			return err
		},
		"not an array": func() error {
			_, err := f.svc.Call(ctx, alice, ops.OpSendMessage, json.RawMessage(`{"threadToken":"`+created.ThreadToken+`","body":"x","mentions":"bob"}`))
			return err
		},
		"a null element": func() error {
			_, err := f.svc.Call(ctx, alice, ops.OpSendMessage, json.RawMessage(`{"threadToken":"`+created.ThreadToken+`","body":"x","mentions":[null]}`))
			return err
		},
	} {
		if code := codeOf(run()); code != apierr.InvalidArgument {
			t.Errorf("%s: %q, want invalid_argument", name, code)
		}
	}
	if f.backend.calls != calls {
		t.Errorf("refused mentions made %d backend calls", f.backend.calls-calls)
	}
	if err := send(many[:ecbserver.MaxMentions]); err != nil {
		t.Fatalf("%d mentions refused: %v", ecbserver.MaxMentions, err)
	}
	if err := send([]string{"bob", "carol", "bob"}); err != nil {
		t.Fatal(err)
	}
	f.backend.mu.Lock()
	got := f.backend.lastAdd.Mentions
	f.backend.mu.Unlock()
	if !slices.Equal(got, []string{"bob", "carol"}) {
		t.Fatalf("the backend was asked %v, want [bob carol]", got)
	}
}

var _ hub.Conn = (*inbox)(nil)
