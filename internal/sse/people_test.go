package sse

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// TestPeopleOverREST walks user search, contacts and profile properties
// through the REST routes against the reference backend, with the pushes on
// the other user's event stream.
func TestPeopleOverREST(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, agent := e.st.UserToken("alice"), e.st.UserToken("agent1")
		as := e.open(agent, "")
		as.ready()

		var page struct {
			Items []struct{ ID, Name string }
			Total int
		}
		e.ok(&page, http.MethodGet, "/v1/users?query=agent&pageSize=1", alice, nil)
		if page.Total != 2 || len(page.Items) != 1 || page.Items[0].ID != "agent1" {
			t.Fatalf("GET /v1/users?query=agent: %+v", page)
		}

		var added ops.ContactResult
		e.ok(&added, http.MethodPost, "/v1/contacts", alice, map[string]string{"userId": "agent1"})
		if added.Contact.ID != "agent1" || added.Contact.Name != "Agent One" {
			t.Fatalf("POST /v1/contacts: %+v", added)
		}
		// agent1 is told, then gets alice's presence at once (offline: she has no stream).
		evs := as.named()
		if len(evs) != 2 || evs[0].name != "contact" || evs[1].name != "presence" {
			t.Fatalf("agent1 got %+v, want a contact and a presence push", evs)
		}
		var cp ops.ContactPush
		evs[0].decode(t, &cp)
		if cp.Change != "added" || cp.User.ID != "alice" {
			t.Fatalf("contact push %+v", cp)
		}
		var pp presence.Presence
		evs[1].decode(t, &pp)
		if pp.UserID != "alice" || pp.Show != presence.Offline {
			t.Fatalf("presence push %+v", pp)
		}
		var got struct{ Presence []presence.Presence }
		e.ok(&got, http.MethodGet, "/v1/presence?userIds=alice", agent, nil)
		if len(got.Presence) != 1 || got.Presence[0].Show != presence.Offline {
			t.Fatalf("agent1 reads alice's presence: %+v", got)
		}

		var prof ops.ProfileResult
		e.ok(&prof, http.MethodPatch, "/v1/profile", alice, map[string]any{"properties": map[string]string{"title": "CTO"}})
		if prof.User.Properties["title"] != "CTO" {
			t.Fatalf("PATCH /v1/profile: %+v", prof)
		}
		var after ops.ProfileResult
		e.ok(&after, http.MethodDelete, "/v1/profile/properties/title", alice, nil)
		if after.User.ID != "alice" || len(after.User.Properties) != 0 {
			t.Fatalf("DELETE /v1/profile/properties/title: %+v", after)
		}
		var pushes []ops.ProfilePush
		for _, ev := range as.named() {
			if ev.name == "profile" {
				var p ops.ProfilePush
				ev.decode(t, &p)
				pushes = append(pushes, p)
			}
		}
		if len(pushes) != 2 || pushes[0].User.Properties["title"] != "CTO" || pushes[1].User.Properties != nil {
			t.Fatalf("agent1's profile pushes %+v", pushes)
		}

		e.ok(nil, http.MethodDelete, "/v1/contacts/agent1", alice, nil)
		evs = as.named()
		if len(evs) != 1 || evs[0].name != "contact" {
			t.Fatalf("agent1 got %+v after the removal", evs)
		}
		evs[0].decode(t, &cp)
		if cp.Change != "removed" || cp.User.ID != "alice" {
			t.Fatalf("contact push %+v", cp)
		}
		if r := e.do(http.MethodGet, "/v1/presence?userIds=alice", agent, nil); r.code() != apierr.Forbidden {
			t.Fatalf("presence of a removed contact: %d %s", r.status, r.code())
		}

		for _, c := range []struct {
			name, method, path string
			token              string
			body               any
			status             int
			code               apierr.Code
		}{
			{"empty query", "GET", "/v1/users?query=", alice, nil, 400, apierr.InvalidArgument},
			{"10 kB query", "GET", "/v1/users?query=" + strings.Repeat("a", 10240), alice, nil, 400, apierr.InvalidArgument},
			{"no token", "GET", "/v1/users?query=a", "", nil, 401, apierr.Unauthenticated},
			{"add yourself", "POST", "/v1/contacts", alice, map[string]string{"userId": "alice"}, 400, apierr.InvalidArgument},
			{"add a stranger", "POST", "/v1/contacts", alice, map[string]string{"userId": "ghost"}, 404, apierr.NotFound},
			{"bad property", "PATCH", "/v1/profile", alice, map[string]any{"properties": map[string]string{"a b": "x"}}, 400, apierr.InvalidArgument},
			{"bad property name", "DELETE", "/v1/profile/properties/a%20b", alice, nil, 400, apierr.InvalidArgument},
		} {
			r := e.do(c.method, c.path, c.token, c.body)
			if r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.code(), c.status, c.code)
			}
		}
	})
}
