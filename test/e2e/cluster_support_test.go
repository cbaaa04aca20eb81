package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// supportOwner returns the index of the node holding the support lease,
// waiting for one to hold it.
func (c *cluster) supportOwner(tb testing.TB, not int) int {
	tb.Helper()
	opt, err := redis.ParseURL(c.Redis)
	if err != nil {
		tb.Fatal(err)
	}
	r := redis.NewClient(opt)
	defer r.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		token, err := r.Get(context.Background(), c.Prefix+":{support}:lease").Result()
		if err == nil {
			name, _, _ := strings.Cut(token, "/")
			for i, n := range c.File.Nodes {
				if n.Name == name && i != not {
					return i
				}
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no node (other than %d) holds the support lease: %q %v", not, token, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitEvent returns the next event named name on s, skipping others.
func awaitEvent(tb testing.TB, s *sseStream, name string, wait time.Duration) sseEvent {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("no %s event within %s", name, wait)
		}
		if ev := s.next(tb, left); ev.Event == name {
			return ev
		}
	}
}

// A visitor on one node asks; agents on two other nodes are available;
// the offer reaches the agent on another node than the visitor's. The
// owner of the support engine is killed with SIGKILL while the offer is
// pending: another node takes the engine over from its saved state, the
// offer is still the agent's and accepting it (on their node) starts the
// chat once, the visitor invited once; the offer cannot be accepted twice.
func TestClusterSupportSurvivesTheOwnersDeath(t *testing.T) {
	c := startCluster(t, 3, "--set", "support.offerTimeout=60s")
	owner := c.supportOwner(t, -1)
	// The visitor and agent1 on the two other nodes, agent2 on the owner.
	var others []int
	for i := range c.Nodes {
		if i != owner {
			others = append(others, i)
		}
	}
	vNode, a1Node, a2Node := c.Nodes[others[0]], c.Nodes[others[1]], c.Nodes[owner]
	agent1 := a1Node.login(t, "agent1")
	agent2 := a2Node.login(t, "agent2")
	alice := vNode.login(t, "alice")
	s1 := openStream(t, a1Node.ECB, agent1)
	s2 := openStream(t, a2Node.ECB, agent2)
	sv := openStream(t, vNode.ECB, alice)
	decodeData[map[string]any](t, call(t, "POST", a1Node.ECB+"/v1/ops/agent.setAvailability", map[string]any{"available": true}, bearer(agent1), "ECB-Stream: "+s1.ID))
	asked := decodeData[struct{ RequestID string }](t, call(t, "POST", vNode.ECB+"/v1/ops/support.ask",
		map[string]any{"workgroup": "support", "question": "Still there?"}, bearer(alice), "ECB-Stream: "+sv.ID))
	var offer struct{ OfferID, RequestID string }
	if err := json.Unmarshal(awaitEvent(t, s1, "offer", 10*time.Second).Data, &offer); err != nil {
		t.Fatal(err)
	}
	if offer.RequestID != asked.RequestID {
		t.Fatalf("offer %+v for another request than %s", offer, asked.RequestID)
	}
	// agent2, on the owner, becomes available too: they hold no offer (the
	// request is agent1's).
	decodeData[map[string]any](t, call(t, "POST", a2Node.ECB+"/v1/ops/agent.setAvailability", map[string]any{"available": true}, bearer(agent2), "ECB-Stream: "+s2.ID))

	c.kill(t, owner)
	next := c.supportOwner(t, owner)
	if next == owner {
		t.Fatal("the dead node still owns the engine")
	}
	// Accept on agent1's node; while no node owns the engine yet the call
	// answers unavailable, and the client tries again.
	var accepted *response
	deadline := time.Now().Add(30 * time.Second)
	for {
		accepted = call(t, "POST", a1Node.ECB+"/v1/ops/offer.accept", map[string]any{"offerId": offer.OfferID}, bearer(agent1), "ECB-Stream: "+s1.ID)
		if accepted.code() != "unavailable" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if accepted.Error != nil {
		t.Fatalf("offer.accept after the owner's death: %s %s", accepted.Error.Code, accepted.Error.Message)
	}
	inv := awaitEvent(t, sv, "invitation", 10*time.Second)
	var vinv struct{ RequestID string }
	_ = json.Unmarshal(inv.Data, &vinv)
	if vinv.RequestID != asked.RequestID {
		t.Fatalf("visitor's invitation %s", inv.Data)
	}
	again := call(t, "POST", a1Node.ECB+"/v1/ops/offer.accept", map[string]any{"offerId": offer.OfferID}, bearer(agent1), "ECB-Stream: "+s1.ID)
	if again.code() != "conflict" {
		t.Fatalf("second accept: %+v", again.Error)
	}
	// agent2's connection died with the owner: the new owner, hearing of
	// no connection of theirs from any node, makes them unavailable.
	api := vNode.serverAPI(t)
	deadline = time.Now().Add(30 * time.Second)
	for {
		w, err := api.GetWorkgroup(context.Background(), "support")
		if err == nil && w.Status.AgentsAvailable == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents available after the owner's death: %+v %v", w, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Exactly one chat, agent1's, as every live node sees it.
	for _, i := range others {
		d := c.Nodes[i]
		conv := decodeData[struct {
			Conversations []struct {
				RequestID string
				Agents    []string
			}
		}](t, call(t, "POST", d.ECB+"/v1/ops/support.conversations", map[string]any{"workgroup": "support"}, bearer(d.login(t, "super"))))
		if len(conv.Conversations) != 1 || conv.Conversations[0].RequestID != asked.RequestID ||
			len(conv.Conversations[0].Agents) != 1 || conv.Conversations[0].Agents[0] != "agent1" {
			t.Fatalf("conversations on %s: %+v", c.File.Nodes[i].Name, conv)
		}
	}
}

// A workgroup created through one node's Server API is served by every
// node, its opening hours included; a visitor asks in it on another node.
func TestClusterWorkgroupChangesReachEveryNode(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	api := c.Nodes[0].serverAPI(t)
	hours := &ecbserver.WorkgroupHours{Timezone: "Europe/Berlin", Weekly: map[string][]string{"sat": {"09:00-12:00"}}, ClosedDates: []string{"2030-01-01"}}
	open := true
	if _, created, err := api.PutWorkgroup(ctx, "billing", ecbserver.WorkgroupSettings{DisplayName: "Billing", MaxChats: 2, Open: &open}); err != nil || !created {
		t.Fatalf("put billing: %v %v", created, err)
	}
	if _, _, err := api.PutWorkgroup(ctx, "weekend", ecbserver.WorkgroupSettings{Hours: hours}); err != nil {
		t.Fatalf("put weekend: %v", err)
	}
	for i := 1; i < 3; i++ {
		other := c.Nodes[i].serverAPI(t)
		w, err := other.GetWorkgroup(ctx, "billing")
		if err != nil || w.DisplayName != "Billing" || w.MaxChats != 2 {
			t.Fatalf("billing on %s: %+v %v", c.File.Nodes[i].Name, w, err)
		}
		w, err = other.GetWorkgroup(ctx, "weekend")
		if err != nil || w.Hours == nil || w.Hours.Timezone != "Europe/Berlin" || len(w.Hours.Weekly["sat"]) != 1 || len(w.Hours.ClosedDates) != 1 {
			t.Fatalf("weekend on %s: %+v %v", c.File.Nodes[i].Name, w, err)
		}
	}
	alice := c.Nodes[2].login(t, "alice")
	asked := decodeData[struct{ Position int }](t, call(t, "POST", c.Nodes[2].ECB+"/v1/ops/support.ask",
		map[string]any{"workgroup": "billing", "question": "Invoice?"}, bearer(alice)))
	if asked.Position != 1 {
		t.Fatalf("ask in billing on node3: position %d", asked.Position)
	}
	if w, err := c.Nodes[1].serverAPI(t).GetWorkgroup(ctx, "billing"); err != nil || w.Status.QueueLength != 1 {
		t.Fatalf("billing's queue seen from node2: %+v %v", w, err)
	}
}

// Queues in cluster mode (the demo's support workgroup: billing for
// agent2, general for both): a billing request asked on one node waits in
// billing while only agent1 (general) is available, as every node reports
// with per-queue figures (the estimate included, which crosses nodes in
// the engine's Status); the owner is killed; on the node that takes over
// the request is still in billing, and goes to agent2 when they come.
func TestClusterQueuesSurviveTheOwnersDeath(t *testing.T) {
	c := startCluster(t, 3, "--set", "support.offerTimeout=60s")
	owner := c.supportOwner(t, -1)
	var others []int
	for i := range c.Nodes {
		if i != owner {
			others = append(others, i)
		}
	}
	vNode, aNode := c.Nodes[others[0]], c.Nodes[others[1]]
	agent1 := aNode.login(t, "agent1")
	alice := vNode.login(t, "alice")
	s1 := openStream(t, aNode.ECB, agent1)
	sv := openStream(t, vNode.ECB, alice)
	decodeData[map[string]any](t, call(t, "POST", aNode.ECB+"/v1/ops/agent.setAvailability", map[string]any{"available": true}, bearer(agent1), "ECB-Stream: "+s1.ID))
	asked := decodeData[struct {
		RequestID string
		Queue     string
		Position  int
	}](t, call(t, "POST", vNode.ECB+"/v1/ops/support.ask",
		map[string]any{"workgroup": "support", "question": "Charged twice?", "metadata": map[string]any{"topic": "billing"}}, bearer(alice), "ECB-Stream: "+sv.ID))
	if asked.Queue != "billing" || asked.Position != 1 {
		t.Fatalf("ask: %+v", asked)
	}
	type figures struct {
		Queue                                       string
		AgentsAvailable, QueueLength, EstimatedWait int
	}
	status := func(node int) []figures {
		st := decodeData[struct{ Queues []figures }](t, call(t, "POST", c.Nodes[node].ECB+"/v1/ops/getWorkgroupStatus",
			map[string]any{"workgroup": "support"}, bearer(alice)))
		return st.Queues
	}
	for _, i := range others {
		qs := status(i)
		if len(qs) != 2 || qs[0] != (figures{"billing", 0, 1, 60}) || qs[1].Queue != "general" || qs[1].AgentsAvailable != 1 || qs[1].QueueLength != 0 {
			t.Fatalf("queues seen from %s: %+v", c.File.Nodes[i].Name, qs)
		}
	}

	c.kill(t, owner)
	if next := c.supportOwner(t, owner); next == owner {
		t.Fatal("the dead node still owns the engine")
	}
	// agent2 comes on a live node: the billing request, restored in its
	// queue, is offered to them.
	agent2 := vNode.login(t, "agent2")
	s2 := openStream(t, vNode.ECB, agent2)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := call(t, "POST", vNode.ECB+"/v1/ops/agent.setAvailability", map[string]any{"available": true}, bearer(agent2), "ECB-Stream: "+s2.ID)
		if r.code() != "unavailable" || time.Now().After(deadline) {
			if r.Error != nil {
				t.Fatalf("agent2 available: %s %s", r.Error.Code, r.Error.Message)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var offer struct{ RequestID, Queue string }
	if err := json.Unmarshal(awaitEvent(t, s2, "offer", 10*time.Second).Data, &offer); err != nil {
		t.Fatal(err)
	}
	if offer.RequestID != asked.RequestID || offer.Queue != "billing" {
		t.Fatalf("offer to agent2 after the takeover: %+v", offer)
	}
}
