package ops_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// agentInbox is the connection of an agent or supervisor: the transports
// answer SeesAgentsOnly from the user's roles.
type agentInbox struct{ inbox }

func (*agentInbox) SeesAgentsOnly() bool { return true }

// lastOffer is the last offer pushed to the agent (zero: none yet).
func (a *agentInbox) lastOffer() ops.OfferPush {
	var offer ops.OfferPush
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.got {
		if p.Event == ops.EventOffer {
			_ = json.Unmarshal(p.Data, &offer)
		}
	}
	return offer
}

func (f *fixture) roleCaller(tb testing.TB, id string, roles []string, conn hub.Conn) ops.Caller {
	tb.Helper()
	tok, err := f.signer.SignUserToken(ecbserver.UserTokenParams{ID: id, Name: id, Roles: roles, Workgroups: []string{"support"}})
	if err != nil {
		tb.Fatal(err)
	}
	u, err := f.svc.Authenticate(tok, "")
	if err != nil {
		tb.Fatal(err)
	}
	f.hub.Register(conn, id)
	return ops.Caller{User: u, Conn: conn}
}

func (c *inbox) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.got {
		if p.Event != ops.EventMessage {
			continue
		}
		var m ops.MessagePush
		if err := json.Unmarshal(p.Payload(), &m); err != nil {
			panic(err)
		}
		out = append(out, m.Message.Body)
	}
	return out
}

func TestWhisperReachesAgentsOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	vConn, a1Conn, a2Conn := &inbox{}, &agentInbox{}, &agentInbox{}
	visitor := f.caller(t, "visitor", vConn)
	agent1 := f.roleCaller(t, "agent1", []string{"agent"}, a1Conn)
	agent2 := f.roleCaller(t, "agent2", []string{"supervisor"}, a2Conn)

	ct, err := f.svc.CreateThread(ctx, agent1, ops.CreateThreadRequest{Participants: []string{"visitor", "agent2"}, Message: ops.MessageInput{Body: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	th := ct.Thread.ID
	tokenOf := func(user string) string {
		tok, err := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: th, UserID: user, Access: 3})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []ops.Caller{visitor, agent2} {
		if _, err := f.svc.GetThread(ctx, c, ops.GetThreadRequest{ThreadToken: tokenOf(c.User.ID)}); err != nil {
			t.Fatal(err)
		}
	}
	vPos := mustPosition(t, f.hub, th)

	// A visitor may not whisper; a bad visibility is refused.
	_, err = f.svc.SendMessage(ctx, visitor, ops.SendMessageRequest{ThreadToken: tokenOf("visitor"), MessageInput: ops.MessageInput{Body: "psst"}, Visibility: "agents"})
	if codeOf(err) != "forbidden" {
		t.Fatalf("visitor whisper: %v", err)
	}
	_, err = f.svc.SendMessage(ctx, agent1, ops.SendMessageRequest{ThreadToken: tokenOf("agent1"), MessageInput: ops.MessageInput{Body: "x"}, Visibility: "all"})
	if codeOf(err) != "invalid_argument" {
		t.Fatalf("visibility all: %v", err)
	}

	res, err := f.svc.SendMessage(ctx, agent1, ops.SendMessageRequest{ThreadToken: tokenOf("agent1"), MessageInput: ops.MessageInput{Body: "whisper"}, Visibility: "agents"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Visibility != "agents" {
		t.Fatalf("answer %+v", res.Message)
	}
	if f.backend.lastVisibility() != "agents" {
		t.Fatal("the backend was not told the visibility")
	}
	if _, err := f.svc.SendMessage(ctx, agent1, ops.SendMessageRequest{ThreadToken: tokenOf("agent1"), MessageInput: ops.MessageInput{Body: "public"}}); err != nil {
		t.Fatal(err)
	}
	if got := vConn.bodies(); len(got) != 1 || got[0] != "public" {
		t.Fatalf("visitor got %v", got)
	}
	if got := a2Conn.bodies(); len(got) != 2 || got[0] != "whisper" || got[1] != "public" {
		t.Fatalf("agent2 got %v", got)
	}

	// Recovery: both reconnect and resume from before the whisper.
	v2, a3 := &inbox{}, &agentInbox{}
	visitor2 := f.caller(t, "visitor", v2)
	f.hub.Register(a3, "agent2")
	agent2b := ops.Caller{User: agent2.User, Conn: a3}
	for _, c := range []ops.Caller{visitor2, agent2b} {
		r, err := f.svc.Resume(ctx, c, ops.ResumeRequest{Threads: []ops.ResumeThread{{ThreadToken: tokenOf(c.User.ID), Epoch: vPos.Epoch, Offset: vPos.Offset}}})
		if err != nil || !r.Threads[0].Recovered {
			t.Fatalf("resume %s: %+v %v", c.User.ID, r, err)
		}
	}
	if got := v2.bodies(); len(got) != 1 || got[0] != "public" {
		t.Fatalf("visitor after resume got %v", got)
	}
	if got := a3.bodies(); len(got) != 2 || got[0] != "whisper" {
		t.Fatalf("agent after resume got %v", got)
	}
}
