package refbackend

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func TestVisitorToken(t *testing.T) {
	e := newEnv(t)
	r := e.web(http.MethodPost, "/visitor", VisitorRequest{Name: "Dana"}, map[string]string{"Origin": testOrigin})
	if r.status != http.StatusOK {
		t.Fatalf("POST /visitor: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != testOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	var vr VisitorResponse
	if err := json.Unmarshal(r.body, &vr); err != nil {
		t.Fatal(err)
	}
	var c userClaims
	e.verify(vr.UserToken, &c)
	if !c.Anon || !slices.Equal(c.Origins, []string{testOrigin}) || c.Subject != vr.User.ID || c.Name != "Dana" || vr.User.Name != "Dana" ||
		!strings.HasPrefix(vr.User.ID, "anon_") {
		t.Fatalf("claims %+v, answer %+v", c, vr)
	}
	if d := time.Until(vr.ExpiresAt); d <= 0 || d > VisitorTokenTTL {
		t.Errorf("expiresAt in %v", d)
	}

	// No body, no Origin (a server-side caller): a fresh id named Visitor.
	r2 := e.web(http.MethodPost, "/visitor", nil, nil)
	var vr2 VisitorResponse
	if r2.status != http.StatusOK || json.Unmarshal(r2.body, &vr2) != nil || vr2.User.Name != "Visitor" || vr2.User.ID == vr.User.ID {
		t.Fatalf("POST /visitor without body: %d %s", r2.status, r2.body)
	}

	// Refusals: a foreign Origin header, a foreign origin in the body, a long name.
	if r := e.web(http.MethodPost, "/visitor", VisitorRequest{}, map[string]string{"Origin": "https://evil.example"}); r.status != http.StatusForbidden {
		t.Errorf("foreign Origin: %d %s", r.status, r.body)
	}
	if r := e.web(http.MethodPost, "/visitor", VisitorRequest{Origin: "https://evil.example"}, nil); r.status != http.StatusForbidden {
		t.Errorf("foreign origin in the body: %d %s", r.status, r.body)
	}
	if r := e.web(http.MethodPost, "/visitor", VisitorRequest{Name: strings.Repeat("x", maxVisitorName+1)}, nil); r.status != http.StatusBadRequest {
		t.Errorf("long name: %d %s", r.status, r.body)
	}
	if r := e.web(http.MethodOptions, "/visitor", nil, map[string]string{"Origin": testOrigin}); r.status != http.StatusNoContent {
		t.Errorf("preflight: %d %s", r.status, r.body)
	}

	// The visitor gets a support thread, chats in it, and is neither a login
	// nor listed by GET /users.
	req := ecbserver.CreateSupportThreadRequest{RequestID: "req-v1", Workgroup: "support", VisitorID: vr.User.ID, VisitorName: "Dana",
		Anonymous: true, AgentID: "agent1", Question: "shipping?"}
	var got ecbserver.CreateSupportThreadResponse
	e.ok(ecbserver.PathCreateSupportThread, req, &got, callOpts{})
	if !slices.Equal(got.Thread.Members, []string{vr.User.ID, "agent1"}) || e.threadClaims(got.VisitorToken).UID != vr.User.ID {
		t.Fatalf("thread %+v", got.Thread)
	}
	e.addMessage(vr.User.ID, got.Thread.ID, "hello", "")
	e.addMessage("agent1", got.Thread.ID, "hi Dana", "")
	var again ecbserver.CreateSupportThreadResponse
	e.ok(ecbserver.PathCreateSupportThread, req, &again, callOpts{})
	if again.Thread.ID != got.Thread.ID {
		t.Fatalf("retry created %s, first %s", again.Thread.ID, got.Thread.ID)
	}
	users := e.web(http.MethodGet, "/users", nil, nil)
	if strings.Contains(string(users.body), vr.User.ID) {
		t.Errorf("GET /users lists the visitor: %s", users.body)
	}
	if r := e.web(http.MethodPost, "/login", LoginRequest{Username: vr.User.ID, Password: "x"}, nil); r.status != http.StatusUnauthorized {
		t.Errorf("visitor login: %d %s", r.status, r.body)
	}

	// An anonymous request naming a real user's id is refused; so is an
	// unknown visitor who is not anonymous.
	bad := req
	bad.RequestID, bad.VisitorID = "req-v2", "alice"
	e.fails(ecbserver.PathCreateSupportThread, bad, callOpts{}, http.StatusForbidden, "forbidden")
	bad = req
	bad.RequestID, bad.VisitorID, bad.Anonymous = "req-v3", "anon_nobody", false
	e.fails(ecbserver.PathCreateSupportThread, bad, callOpts{}, http.StatusNotFound, "not_found")
}
