package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// TestClusterServerAPIMembersAndSupportClose: the Server API calls of issue
// 15 sent to one node act on the connections of another, and a support
// conversation is closed from a node that does not own the support routing
// (it forwards to the owner).
func TestClusterServerAPIMembersAndSupportClose(t *testing.T) {
	c := startCluster(t, 2)
	ctx := context.Background()
	owner := c.supportOwner(t, -1)
	other := 1 - owner
	a, b := c.Nodes[other], c.Nodes[owner]
	api := a.serverAPI(t)

	// Members: alice on node a makes a thread; carol listens on node b.
	alice, carol := a.login(t, "alice"), b.login(t, "carol")
	cr := decodeData[created](t, call(t, "POST", a.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hi"}}, bearer(alice)))
	id := cr.Thread.ID
	carolStream := openStream(t, b.ECB, carol)
	a.backendCall(t, ecbserver.PathAddParticipants, map[string]any{"userId": "alice", "threadId": id, "participants": []string{"carol"}})
	if _, err := api.AddMember(ctx, id, "carol", ""); err != nil {
		t.Fatal(err)
	}
	added := decodeEvent[addedPush](t, carolStream.await(t, "thread"))
	if added.Change != "added" || added.ThreadToken == "" {
		t.Fatalf("carol on the other node was pushed %+v", added)
	}
	if r := call(t, "GET", b.ECB+"/v1/threads/"+id, nil, bearer(carol), "ECB-Stream: "+carolStream.ID, "ECB-Thread-Token: "+added.ThreadToken); r.Status != 200 {
		t.Fatalf("carol's getThread: %d %s", r.Status, r.code())
	}
	a.backendCall(t, ecbserver.PathLeaveThread, map[string]any{"userId": "carol", "threadId": id})
	if _, err := api.RemoveMember(ctx, id, "carol"); err != nil {
		t.Fatal(err)
	}
	if ch := decodeEvent[threadChange](t, carolStream.await(t, "thread")); ch.Change != "removed" {
		t.Fatalf("carol was told %+v", ch)
	}
	a.send(t, alice, id, "after carol").ok(t)
	carolStream.expectNoneOf(t, 500*time.Millisecond, "message")

	// Support: agent and visitor on node a, which forwards to the owner b.
	agentSock, refused := sioDial(t, a.ECB, map[string]string{"userToken": a.login(t, "agent1")})
	if refused != nil {
		t.Fatal(refused)
	}
	if r := agentSock.call("agent.setAvailability", map[string]any{"available": true}); r.Error != nil {
		t.Fatalf("setAvailability: %s", r.code())
	}
	visitor := openStream(t, a.ECB, alice)
	asked := decodeData[struct{ RequestID string }](t, call(t, "POST", a.ECB+"/v1/ops/support.ask", map[string]any{"workgroup": "support", "question": "help"}, bearer(alice), "ECB-Stream: "+visitor.ID))
	var offer struct{ OfferID string }
	_ = json.Unmarshal(agentSock.event("offer"), &offer)
	if r := agentSock.call("offer.accept", map[string]any{"offerId": offer.OfferID}); r.Error != nil {
		t.Fatalf("offer.accept: %s", r.code())
	}
	closed, err := api.CloseConversation(ctx, asked.RequestID)
	if err != nil || closed.State != "closed" {
		t.Fatalf("close from the non-owner: %+v %v", closed, err)
	}
	visitor.await(t, "supportEnded")
	if convs, err := b.serverAPI(t).ListConversations(ctx, "support"); err != nil || len(convs) != 0 {
		t.Fatalf("conversations on the owner: %+v %v", convs, err)
	}
}
