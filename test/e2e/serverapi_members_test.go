package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// backendCall calls the demo's reference backend directly, signed with the
// demo's backend secret: the company backend changing its own store, which
// ECB does not see until the backend calls the Server API.
func (d *demo) backendCall(tb testing.TB, path string, body any) {
	tb.Helper()
	secret, err := os.ReadFile(filepath.Join(d.Data, "backend-secret"))
	if err != nil {
		tb.Fatal(err)
	}
	raw, _ := json.Marshal(body)
	now := time.Now()
	req, _ := http.NewRequest("POST", strings.TrimSuffix(d.Backend, "/")+"/ecb/v1"+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ecbserver.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(ecbserver.HeaderSignature, ecbserver.Sign([]byte(strings.TrimSpace(string(secret))), now, raw))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		tb.Fatalf("backend %s: %d %s", path, resp.StatusCode, b.String())
	}
}

type addedPush struct {
	ThreadID    string  `json:"threadId"`
	Change      string  `json:"change"`
	Thread      *thread `json:"thread"`
	ThreadToken string  `json:"threadToken"`
}

// TestServerAPIAddsAndRemovesMembersLive: the backend adds carol to a
// thread in its store and tells ECB; carol's open stream gets the thread
// with a threadToken of hers, listens with it and gets the next message
// without reloading her threads. Then the backend removes her: her stream
// stops getting the thread at once.
func TestServerAPIAddsAndRemovesMembersLive(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	alice, carol := d.login(t, "alice"), d.login(t, "carol")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "subject": "group", "message": map[string]any{"body": "hello"}}, bearer(alice)))
	id := c.Thread.ID
	aliceStream, _ := d.listening(t, alice, id)
	carolStream := openStream(t, d.ECB, carol)

	// Not a member in the backend yet: ECB's getThread as carol is refused, nothing is pushed.
	if _, err := api.AddMember(ctx, id, "carol", ""); apiErrCode(err) != "conflict" {
		t.Fatalf("add before the backend did: %v", err)
	}
	d.backendCall(t, ecbserver.PathAddParticipants, map[string]any{"userId": "alice", "threadId": id, "participants": []string{"carol"}})
	res, err := api.AddMember(ctx, id, "carol", "")
	if err != nil || res.Told != 1 {
		t.Fatalf("add: %+v %v", res, err)
	}
	added := decodeEvent[addedPush](t, carolStream.await(t, "thread"))
	if added.Change != "added" || added.ThreadID != id || added.ThreadToken == "" || added.Thread == nil {
		t.Fatalf("carol was pushed %+v", added)
	}
	if m := decodeEvent[map[string]any](t, aliceStream.await(t, "member")); m["userId"] != "carol" || m["change"] != "joined" {
		t.Fatalf("alice was pushed %v", m)
	}
	// The pushed token is all carol needs to listen.
	if r := call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(carol), "ECB-Stream: "+carolStream.ID, "ECB-Thread-Token: "+added.ThreadToken); r.Status != 200 {
		t.Fatalf("carol's getThread with the pushed token: %d %s", r.Status, r.code())
	}
	d.send(t, alice, id, "welcome carol").ok(t)
	if m := decodeEvent[messagePush](t, carolStream.await(t, "message")); m.Message.Body != "welcome carol" {
		t.Fatalf("carol got %+v", m)
	}

	// Removal: the backend removes carol, then tells ECB.
	d.backendCall(t, ecbserver.PathLeaveThread, map[string]any{"userId": "carol", "threadId": id})
	rm, err := api.RemoveMember(ctx, id, "carol")
	if err != nil || rm.Detached != 1 {
		t.Fatalf("remove: %+v %v", rm, err)
	}
	if ch := decodeEvent[threadChange](t, carolStream.await(t, "thread")); ch.Change != "removed" || ch.ThreadID != id {
		t.Fatalf("carol was told %+v", ch)
	}
	if m := decodeEvent[map[string]any](t, aliceStream.await(t, "member")); m["change"] != "removed" {
		t.Fatalf("alice was pushed %v", m)
	}
	d.send(t, alice, id, "carol is gone").ok(t)
	carolStream.expectNoneOf(t, 500*time.Millisecond, "message")
	if r := call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(carol), "ECB-Thread-Token: "+added.ThreadToken); r.Status == 200 {
		t.Fatal("carol still reads the thread she was removed from")
	}

	// Announce: the backend's own thread (here: the one above) to its online members.
	an, err := api.AnnounceThread(ctx, id, []string{"alice", "bob", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(an.Told, []string{"alice"}) || !slices.Equal(an.Offline, []string{"bob"}) || !slices.Equal(an.Refused, []string{"carol"}) {
		t.Fatalf("announce %+v", an)
	}
	if p := decodeEvent[addedPush](t, aliceStream.await(t, "thread")); p.Change != "created" || p.ThreadToken == "" {
		t.Fatalf("alice was pushed %+v", p)
	}
}

// TestServerAPIEndsASupportConversation: the backend closes a live chat
// through the Server API: visitor and agent are told, the agent is free
// again (the next request is offered to them), and closing the thread ends
// the next chat too.
func TestServerAPIEndsASupportConversation(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	agent, alice := d.login(t, "agent1"), d.login(t, "alice")
	agentSock, refused := sioDial(t, d.ECB, map[string]string{"userToken": agent})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := agentSock.call("agent.setAvailability", map[string]any{"available": true, "maxChats": 1}); a.Error != nil {
		t.Fatalf("setAvailability: %s", a.code())
	}
	visitor := openStream(t, d.ECB, alice)
	chat := func() (requestID, threadID string) {
		t.Helper()
		asked := decodeData[struct{ RequestID string }](t, call(t, "POST", d.ECB+"/v1/ops/support.ask", map[string]any{"workgroup": "support", "question": "where is my order?"}, bearer(alice), "ECB-Stream: "+visitor.ID))
		var offer struct{ OfferID string }
		_ = json.Unmarshal(agentSock.event("offer"), &offer)
		var accepted struct{ Thread struct{ ID string } }
		if a := agentSock.call("offer.accept", map[string]any{"offerId": offer.OfferID}); a.Error != nil || json.Unmarshal(a.Data, &accepted) != nil {
			t.Fatalf("offer.accept: %s", a.code())
		}
		return asked.RequestID, accepted.Thread.ID
	}
	req, _ := chat()
	second, refused := sioDial(t, d.ECB, map[string]string{"userToken": d.login(t, "agent2")})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := second.call("agent.setAvailability", map[string]any{"available": true}); a.Error != nil {
		t.Fatalf("setAvailability agent2: %s", a.code())
	}
	if _, err := api.AddConversationAgent(ctx, req, "agent2"); err != nil {
		t.Fatalf("add agent2: %v", err)
	}
	closed, err := api.CloseConversation(ctx, req)
	if err != nil || closed.State != "closed" {
		t.Fatalf("close: %+v %v", closed, err)
	}
	if ev := visitor.await(t, "supportEnded"); !strings.Contains(string(ev.Data), req) {
		t.Fatalf("visitor was told %s", ev.Data)
	}
	_ = agentSock.event("supportEnded")
	if a := second.call("agent.setAvailability", map[string]any{"available": false}); a.Error != nil {
		t.Fatalf("agent2 away: %s", a.code())
	}
	// maxChats 1: only a freed agent is offered the next request.
	req2, thread2 := chat()
	res, err := api.ThreadEvent(ctx, thread2, ecbserver.ThreadClosed, nil)
	if err != nil || !slices.Equal(res.EndedConversations, []string{req2}) {
		t.Fatalf("closing the support thread: %+v %v", res, err)
	}
	convs, err := api.ListConversations(ctx, "support")
	if err != nil || len(convs) != 0 {
		t.Fatalf("live conversations after the thread was closed: %+v %v", convs, err)
	}
}

// TestDiscoveryDocument: GET /v1/discover without a token names the
// endpoints and versions, and the reference backend's optional calls as
// supported once probed.
func TestDiscoveryDocument(t *testing.T) {
	d := startDemo(t)
	type discovery struct {
		Versions     map[string]string `json:"versions"`
		Endpoints    map[string]string `json:"endpoints"`
		Transports   []string          `json:"transports"`
		Tokens       struct{ Algorithms []string }
		Capabilities struct {
			Operations   []string          `json:"operations"`
			BackendCalls map[string]string `json:"backendCalls"`
			ProbedAt     *time.Time        `json:"probedAt"`
		} `json:"capabilities"`
	}
	var body discovery
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := call(t, "GET", d.ECB+"/v1/discover", nil)
		if r.Status != 200 {
			t.Fatalf("discover: %d %s", r.Status, r.code())
		}
		body = decodeData[discovery](t, r)
		if body.Capabilities.ProbedAt != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body.Capabilities.ProbedAt == nil {
		t.Fatal("the optional calls were not probed within 10s of the start")
	}
	if body.Versions["contract"] != ecbserver.ContractFullVersion || body.Versions["protocol"] == "" || body.Versions["serverApi"] == "" {
		t.Fatalf("versions %v", body.Versions)
	}
	if body.Endpoints["socketIO"] != "/socket.io/" || body.Endpoints["events"] != "/v1/events" || body.Endpoints["serverApi"] != "/server/v1" {
		t.Fatalf("endpoints %v", body.Endpoints)
	}
	// The client API's OpenAPI document is served where the document says.
	if body.Endpoints["openApi"] != "/v1/openapi.yaml" {
		t.Fatalf("endpoints %v: no openApi", body.Endpoints)
	}
	spec, err := http.Get(d.ECB + body.Endpoints["openApi"])
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(spec.Body)
	spec.Body.Close()
	if spec.StatusCode != 200 || !strings.HasPrefix(string(raw), "openapi: 3.1") {
		t.Fatalf("GET /v1/openapi.yaml: %d %.80q", spec.StatusCode, raw)
	}
	if !slices.Contains(body.Capabilities.Operations, "support.ask") || !slices.Contains(body.Capabilities.Operations, "sendMessage") {
		t.Fatalf("operations %v", body.Capabilities.Operations)
	}
	for _, name := range ecbserver.OptionalCalls() {
		if body.Capabilities.BackendCalls[name] != "supported" {
			t.Errorf("the reference backend's %s: %q", name, body.Capabilities.BackendCalls[name])
		}
	}
	if len(body.Tokens.Algorithms) == 0 || !slices.Equal(body.Transports, []string{"socketio", "sse"}) {
		t.Fatalf("tokens %v transports %v", body.Tokens, body.Transports)
	}
}
