package refbackend

import (
	"net/http"
	"slices"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func TestCreateSupportThread(t *testing.T) {
	e := newEnv(t)
	req := ecbserver.CreateSupportThreadRequest{RequestID: "req-1", Workgroup: "support", VisitorID: "alice",
		AgentID: "agent1", Question: "my invoice?", Metadata: []byte(`{"email":"a@example.com"}`), OperationID: "op-1"}
	var got ecbserver.CreateSupportThreadResponse
	e.ok(ecbserver.PathCreateSupportThread, req, &got, callOpts{})
	if got.Thread.Subject != "my invoice?" || !slices.Equal(got.Thread.Members, []string{"alice", "agent1"}) {
		t.Fatalf("thread = %+v", got.Thread)
	}
	vc, ac := e.threadClaims(got.VisitorToken), e.threadClaims(got.AgentToken)
	if vc.UID != "alice" || ac.UID != "agent1" || vc.Subject != got.Thread.ID || vc.Acc != int(memberAccess) ||
		ac.Acc != int(memberAccess|ecbserver.AccessAdmin) {
		t.Fatalf("tokens: %+v %+v", vc, ac)
	}
	// Both sides see it, and may write in it.
	e.addMessage("alice", got.Thread.ID, "hello", "")
	e.addMessage("agent1", got.Thread.ID, "hi, how can I help?", "")

	// The same request again: the same thread.
	var again ecbserver.CreateSupportThreadResponse
	e.ok(ecbserver.PathCreateSupportThread, req, &again, callOpts{})
	if again.Thread.ID != got.Thread.ID {
		t.Fatalf("retry created %s, first %s", again.Thread.ID, got.Thread.ID)
	}

	// Refusals: an agent not in the workgroup, an unknown visitor, a bad request.
	bad := req
	bad.RequestID, bad.AgentID = "req-2", "bob"
	e.fails(ecbserver.PathCreateSupportThread, bad, callOpts{}, http.StatusForbidden, "forbidden")
	bad = req
	bad.RequestID, bad.VisitorID = "req-3", "nobody"
	e.fails(ecbserver.PathCreateSupportThread, bad, callOpts{}, http.StatusNotFound, "not_found")
	bad = req
	bad.AgentID = ""
	e.fails(ecbserver.PathCreateSupportThread, bad, callOpts{invalidRequest: true}, http.StatusBadRequest, "invalid_argument")
}
