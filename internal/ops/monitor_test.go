package ops_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// supportBackend is memBackend with the support thread call.
type supportBackend struct{ *memBackend }

func (b supportBackend) CreateSupportThread(_ context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	id := "support-" + req.RequestID
	t := &ecbserver.Thread{ID: id, Members: []string{req.VisitorID, req.AgentID}}
	b.threads[id] = t
	vt, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.VisitorID, Access: 3})
	if err != nil {
		return nil, err
	}
	at, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.AgentID, Access: 7})
	return &ecbserver.CreateSupportThreadResponse{Thread: *t, VisitorToken: vt, AgentToken: at}, err
}

func (b supportBackend) messageCount(threadID string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.messages[threadID])
}

// supportChat starts a Service with support and membership enforcement off
// (any threadToken of the thread opens it), and a chat between the visitor
// alice and agent1; it returns the fixture, the request, and agent1's
// threadToken.
func supportChat(t *testing.T) (f *fixture, b supportBackend, requestID, threadID, agentToken string) {
	t.Helper()
	base := newFixture(t)
	b = supportBackend{base.backend}
	off := false
	svc := ops.New(ops.Config{EnforceMembership: &off}, b, mustVerifier(t), base.hub, slog.New(slog.DiscardHandler), nil)
	if err := svc.EnableSupport([]support.Workgroup{{Name: "support", Strategy: support.RoundRobin, Open: true, OfferTimeout: time.Hour, MaxChats: 5}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	f = &fixture{svc: svc, hub: base.hub, backend: base.backend, signer: base.signer}
	ctx := context.Background()
	agentConn := &agentInbox{}
	agent := f.roleCaller(t, "agent1", []string{"agent"}, agentConn)
	alice := f.caller(t, "alice", &inbox{})
	if _, err := svc.AgentSetAvailability(ctx, agent, ops.SetAvailabilityRequest{Available: true}); err != nil {
		t.Fatal(err)
	}
	asked, err := svc.SupportAsk(ctx, alice, ops.SupportAskRequest{Workgroup: "support", Question: "where is my order?"})
	if err != nil {
		t.Fatal(err)
	}
	offer := agentConn.lastOffer()
	if offer.OfferID == "" {
		t.Fatal("agent1 got no offer")
	}
	acc, err := svc.OfferAccept(ctx, agent, ops.OfferRef{OfferID: offer.OfferID})
	if err != nil {
		t.Fatal(err)
	}
	return f, b, asked.RequestID, acc.Thread.ID, acc.ThreadToken
}

// TestMonitorIsReadOnlyOnEveryTransport: a supervisor who monitors a chat on
// one connection may not act in its thread (send, whisper, typing, read
// marks, members, leave), whether the request names the thread or not, from
// the monitoring connection, another one, or none (REST without a stream);
// the agent's threadToken does not help (enforceMembership is off here).
// After stopListening, or support.join, the refusal ends.
func TestMonitorIsReadOnlyOnEveryTransport(t *testing.T) {
	f, b, requestID, threadID, agentTok := supportChat(t)
	ctx := context.Background()
	monConn, otherConn := &agentInbox{}, &agentInbox{}
	sup := f.roleCaller(t, "super", []string{"supervisor"}, monConn)
	f.hub.Register(otherConn, "super")
	if _, err := f.svc.SupportMonitor(ctx, sup, ops.MonitorRequest{RequestID: requestID}); err != nil {
		t.Fatal(err)
	}
	stored := b.messageCount(threadID)
	callers := map[string]ops.Caller{
		"the monitoring connection": sup,
		"another connection":        {User: sup.User, Conn: otherConn},
		"no connection (REST)":      {User: sup.User},
	}
	for name, c := range callers {
		for _, id := range []string{"", threadID} {
			acts := map[string]func() error{
				"sendMessage": func() error {
					_, err := f.svc.SendMessage(ctx, c, ops.SendMessageRequest{ThreadToken: agentTok, ThreadID: id, MessageInput: ops.MessageInput{Body: "I am not here"}})
					return err
				},
				"whisper": func() error {
					_, err := f.svc.SendMessage(ctx, c, ops.SendMessageRequest{ThreadToken: agentTok, ThreadID: id, MessageInput: ops.MessageInput{Body: "psst"}, Visibility: "agents"})
					return err
				},
				"typing": func() error {
					_, err := f.svc.Typing(ctx, c, ops.TypingRequest{ThreadToken: agentTok, ThreadID: id, State: "start"})
					return err
				},
				"markRead": func() error {
					_, err := f.svc.MarkRead(ctx, c, ops.MarkReadRequest{ThreadToken: agentTok, ThreadID: id, MessageID: "m1"})
					return err
				},
				"addParticipants": func() error {
					_, err := f.svc.AddParticipants(ctx, c, ops.AddParticipantsRequest{ThreadToken: agentTok, ThreadID: id, Participants: []string{"mallory"}})
					return err
				},
				"leaveThread": func() error {
					_, err := f.svc.LeaveThread(ctx, c, ops.LeaveThreadRequest{ThreadToken: agentTok, ThreadID: id})
					return err
				},
			}
			for op, act := range acts {
				if err := act(); codeOf(err) != "forbidden" {
					t.Errorf("%s from %s, threadId %q: %v, want forbidden", op, name, id, err)
				}
			}
		}
	}
	if n := b.messageCount(threadID); n != stored {
		t.Fatalf("the backend stored %d messages from a monitor", n-stored)
	}
	// Reading stays allowed.
	if _, err := f.svc.GetThread(ctx, ops.Caller{User: sup.User}, ops.GetThreadRequest{ThreadToken: agentTok}); err != nil {
		t.Fatalf("getThread while monitoring: %v", err)
	}

	// stopListening on the monitoring connection ends the monitor.
	if _, err := f.svc.StopListening(ctx, sup, ops.StopListeningRequest{ThreadID: threadID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Typing(ctx, ops.Caller{User: sup.User}, ops.TypingRequest{ThreadToken: agentTok, State: "stop"}); err != nil {
		t.Fatalf("typing after the monitor ended: %v", err)
	}

	// Monitor on two connections, join from one: a member writes from anywhere.
	for _, c := range []ops.Caller{sup, {User: sup.User, Conn: otherConn}} {
		if _, err := f.svc.SupportMonitor(ctx, c, ops.MonitorRequest{RequestID: requestID}); err != nil {
			t.Fatal(err)
		}
	}
	joined, err := f.svc.SupportJoin(ctx, ops.Caller{User: sup.User, Conn: otherConn}, ops.SupportRequestRef{RequestID: requestID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SendMessage(ctx, sup, ops.SendMessageRequest{ThreadToken: joined.ThreadToken, MessageInput: ops.MessageInput{Body: "supervisor here"}}); err != nil {
		t.Fatalf("a supervisor who joined: %v", err)
	}
}

// TestMonitorEndsWithItsConnection: the record is per connection; when the
// monitoring connection ends, the user is no longer a monitor.
func TestMonitorEndsWithItsConnection(t *testing.T) {
	f, _, requestID, _, agentTok := supportChat(t)
	ctx := context.Background()
	monConn := &agentInbox{}
	sup := f.roleCaller(t, "super", []string{"supervisor"}, monConn)
	if _, err := f.svc.SupportMonitor(ctx, sup, ops.MonitorRequest{RequestID: requestID}); err != nil {
		t.Fatal(err)
	}
	rest := ops.Caller{User: sup.User}
	if _, err := f.svc.Typing(ctx, rest, ops.TypingRequest{ThreadToken: agentTok, State: "stop"}); codeOf(err) != "forbidden" {
		t.Fatalf("typing while monitoring: %v", err)
	}
	f.hub.Unregister(hub.Conn(monConn))
	if _, err := f.svc.Typing(ctx, rest, ops.TypingRequest{ThreadToken: agentTok, State: "stop"}); err != nil {
		t.Fatalf("typing after the monitoring connection ended: %v", err)
	}
}
