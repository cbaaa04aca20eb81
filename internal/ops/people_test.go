package ops_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// The people calls of memBackend: mutual contacts in b.contacts (set by
// usePeople), properties in b.properties.

func (b *memBackend) usePeople() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.contacts = map[string]map[string]bool{"alice": {"bob": true}, "bob": {"alice": true}}
	b.properties = map[string]map[string]string{}
}

// contactsOf answers the contacts of id when usePeople was called.
func (b *memBackend) contactsOf(id string) ([]ecbserver.User, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.contacts == nil {
		return nil, false
	}
	out := []ecbserver.User{}
	for c := range b.contacts[id] {
		out = append(out, ecbserver.User{ID: c, Name: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, true
}

func (b *memBackend) SearchUsers(_ context.Context, req *ecbserver.SearchUsersRequest) (*ecbserver.SearchUsersResponse, error) {
	b.call()
	b.mu.Lock()
	b.searched = req.Query
	b.mu.Unlock()
	out := []ecbserver.User{}
	for _, id := range []string{"alice", "bob", "carol", "dave", "u01", "u02", "u03"} {
		if id != req.UserID && strings.Contains(id, req.Query) {
			out = append(out, ecbserver.User{ID: id, Name: id})
		}
	}
	return &ecbserver.SearchUsersResponse{Users: out}, nil
}

func (b *memBackend) AddContact(_ context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	return b.setContact(req, true)
}

func (b *memBackend) RemoveContact(_ context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	return b.setContact(req, false)
}

func (b *memBackend) setContact(req *ecbserver.ContactRequest, on bool) (*ecbserver.ContactResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.ContactID == "ghost" {
		return nil, apierr.New(apierr.NotFound, "no user")
	}
	if b.contacts == nil {
		b.contacts = map[string]map[string]bool{}
	}
	for _, pair := range [][2]string{{req.UserID, req.ContactID}, {req.ContactID, req.UserID}} {
		if b.contacts[pair[0]] == nil {
			b.contacts[pair[0]] = map[string]bool{}
		}
		if on {
			b.contacts[pair[0]][pair[1]] = true
		} else {
			delete(b.contacts[pair[0]], pair[1])
		}
	}
	return &ecbserver.ContactResponse{Contact: ecbserver.User{ID: req.ContactID, Name: req.ContactID}, User: ecbserver.User{ID: req.UserID, Name: req.UserID}}, nil
}

func (b *memBackend) SetProfile(_ context.Context, req *ecbserver.SetProfileRequest) (*ecbserver.ProfileResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.properties == nil {
		b.properties = map[string]map[string]string{}
	}
	if b.properties[req.UserID] == nil {
		b.properties[req.UserID] = map[string]string{}
	}
	for k, v := range req.Properties {
		b.properties[req.UserID][k] = v
	}
	return b.profileLocked(req.UserID), nil
}

func (b *memBackend) DeleteProfileProperty(_ context.Context, req *ecbserver.DeleteProfilePropertyRequest) (*ecbserver.ProfileResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.properties[req.UserID], req.Name)
	return b.profileLocked(req.UserID), nil
}

func (b *memBackend) profileLocked(id string) *ecbserver.ProfileResponse {
	u := ecbserver.User{ID: id, Name: id}
	if len(b.properties[id]) > 0 {
		u.Properties = map[string]string{}
		for k, v := range b.properties[id] {
			u.Properties[k] = v
		}
	}
	return &ecbserver.ProfileResponse{User: u}
}

// pushes returns the pushes of event that conn got, decoded into T.
func pushes[T any](tb testing.TB, conn *inbox, event string) []T {
	tb.Helper()
	conn.mu.Lock()
	defer conn.mu.Unlock()
	var out []T
	for _, p := range conn.got {
		if p.Event != event {
			continue
		}
		var v T
		if err := json.Unmarshal(p.Payload(), &v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestSearchUsers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	p, err := f.svc.SearchUsers(ctx, alice, ops.SearchUsersRequest{Query: "  u0 ", PageRequest: ops.PageRequest{PageSize: 2}})
	if err != nil || p.Total != 3 || len(p.Items) != 2 || !p.HasMore || p.Items[0].ID != "u01" {
		t.Fatalf("search u0: %+v %v", p, err)
	}
	if f.backend.searched != "u0" {
		t.Fatalf("the backend was asked %q, want the trimmed query", f.backend.searched)
	}
	p, err = f.svc.SearchUsers(ctx, alice, ops.SearchUsersRequest{Query: "u0", PageRequest: ops.PageRequest{Page: 2, PageSize: 2}})
	if err != nil || len(p.Items) != 1 || p.HasMore || p.Items[0].ID != "u03" {
		t.Fatalf("search u0 page 2: %+v %v", p, err)
	}
	// Through Call, as Socket.IO and POST /v1/ops/searchUsers do.
	res, err := f.svc.Call(ctx, alice, ops.OpSearchUsers, json.RawMessage(`{"query":"bo"}`))
	if pg, ok := res.(*ops.Page[ecbserver.User]); err != nil || !ok || len(pg.Items) != 1 || pg.Items[0].ID != "bob" {
		t.Fatalf("Call searchUsers: %#v %v", res, err)
	}
}

// TestPeopleRefusals: every bad input is refused before the backend is called.
func TestPeopleRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.caller(t, "alice", nil)
	anonTok, err := f.signer.SignAnonymousToken(ecbserver.AnonParams{Origins: []string{"https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	anonUser, err := f.svc.Authenticate(anonTok, "https://shop.example")
	if err != nil {
		t.Fatal(err)
	}
	anon := ops.Caller{User: anonUser}
	many := map[string]string{}
	for i := range ecbserver.MaxProfileProperties + 1 {
		many[strings.Repeat("p", i+1)] = "x"
	}
	cases := []struct {
		name string
		op   string
		c    ops.Caller
		body string
		want apierr.Code
	}{
		{"empty query", ops.OpSearchUsers, alice, `{"query":""}`, apierr.InvalidArgument},
		{"blank query", ops.OpSearchUsers, alice, `{"query":"   "}`, apierr.InvalidArgument},
		{"no query", ops.OpSearchUsers, alice, `{}`, apierr.InvalidArgument},
		{"10 kB query", ops.OpSearchUsers, alice, `{"query":"` + strings.Repeat("a", 10240) + `"}`, apierr.InvalidArgument},
		{"query not a string", ops.OpSearchUsers, alice, `{"query":7}`, apierr.InvalidArgument},
		{"negative page", ops.OpSearchUsers, alice, `{"query":"a","page":-1}`, apierr.InvalidArgument},
		{"anonymous search", ops.OpSearchUsers, anon, `{"query":"a"}`, apierr.Forbidden},
		{"no token", ops.OpSearchUsers, ops.Caller{}, `{"query":"a"}`, apierr.Unauthenticated},
		{"add nobody", ops.OpAddContact, alice, `{}`, apierr.InvalidArgument},
		{"add self", ops.OpAddContact, alice, `{"userId":"alice"}`, apierr.InvalidArgument},
		{"add a 10 kB id", ops.OpAddContact, alice, `{"userId":"` + strings.Repeat("a", 10240) + `"}`, apierr.InvalidArgument},
		{"anonymous add", ops.OpAddContact, anon, `{"userId":"bob"}`, apierr.Forbidden},
		{"anonymous remove", ops.OpRemoveContact, anon, `{"userId":"bob"}`, apierr.Forbidden},
		{"remove self", ops.OpRemoveContact, alice, `{"userId":"alice"}`, apierr.InvalidArgument},
		{"no properties", ops.OpSetProfile, alice, `{"properties":{}}`, apierr.InvalidArgument},
		{"property not a string", ops.OpSetProfile, alice, `{"properties":{"a":1}}`, apierr.InvalidArgument},
		{"bad property name", ops.OpSetProfile, alice, `{"properties":{"a b":"x"}}`, apierr.InvalidArgument},
		{"value too large", ops.OpSetProfile, alice, `{"properties":{"a":"` + strings.Repeat("v", 1025) + `"}}`, apierr.PayloadTooLarge},
		{"anonymous profile", ops.OpSetProfile, anon, `{"properties":{"a":"b"}}`, apierr.Forbidden},
		{"delete no name", ops.OpDeleteProfileProperty, alice, `{}`, apierr.InvalidArgument},
		{"delete bad name", ops.OpDeleteProfileProperty, alice, `{"name":"../x"}`, apierr.InvalidArgument},
		{"anonymous delete", ops.OpDeleteProfileProperty, anon, `{"name":"a"}`, apierr.Forbidden},
	}
	raw, _ := json.Marshal(map[string]any{"properties": many})
	cases = append(cases, struct {
		name string
		op   string
		c    ops.Caller
		body string
		want apierr.Code
	}{"33 properties", ops.OpSetProfile, alice, string(raw), apierr.InvalidArgument})
	for _, tc := range cases {
		before := f.backend.calls
		_, err := f.svc.Call(ctx, tc.c, tc.op, json.RawMessage(tc.body))
		if codeOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
		if f.backend.calls != before {
			t.Errorf("%s: the backend was called", tc.name)
		}
	}
	// An unknown user is the backend's 404.
	if _, err := f.svc.AddContact(ctx, alice, ops.ContactRequest{UserID: "ghost"}); codeOf(err) != apierr.NotFound {
		t.Errorf("add ghost: %v", err)
	}
}

func TestContactsPushAndPresenceFollows(t *testing.T) {
	f := newFixture(t)
	f.backend.usePeople()
	ctx := context.Background()
	aliceA, aliceB, daveConn := &inbox{}, &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceA)
	f.caller(t, "alice", aliceB)
	dave := f.caller(t, "dave", daveConn)
	if _, err := f.svc.SetPresence(ctx, dave, ops.SetPresenceRequest{Show: "dnd", Status: "busy"}); err != nil {
		t.Fatal(err)
	}
	if len(pushes[presence.Presence](t, aliceA, "presence")) != 0 {
		t.Fatal("alice saw dave's presence before he was a contact")
	}
	if _, err := f.svc.GetPresence(ctx, alice, ops.GetPresenceRequest{UserIDs: []string{"dave"}}); codeOf(err) != apierr.Forbidden {
		t.Fatalf("presence of a stranger: %v", err)
	}

	res, err := f.svc.AddContact(ctx, alice, ops.ContactRequest{UserID: "dave"})
	if err != nil || res.Contact.ID != "dave" {
		t.Fatalf("addContact: %+v %v", res, err)
	}
	if got := pushes[ops.ContactPush](t, aliceA, "contact"); len(got) != 0 {
		t.Errorf("the calling connection got a contact push too: %+v", got)
	}
	if got := pushes[ops.ContactPush](t, aliceB, "contact"); len(got) != 1 || got[0].Change != "added" || got[0].User.ID != "dave" {
		t.Errorf("alice's other connection: %+v", got)
	}
	if got := pushes[ops.ContactPush](t, daveConn, "contact"); len(got) != 1 || got[0].Change != "added" || got[0].User.ID != "alice" {
		t.Errorf("dave: %+v", got)
	}
	// Each gets the other's presence at once.
	if got := pushes[presence.Presence](t, aliceA, "presence"); len(got) != 1 || got[0].UserID != "dave" || got[0].Show != "dnd" {
		t.Errorf("alice got presence %+v", got)
	}
	if got := pushes[presence.Presence](t, daveConn, "presence"); !slices.ContainsFunc(got, func(p presence.Presence) bool { return p.UserID == "alice" && p.Show == "available" }) {
		t.Errorf("dave got presence %+v", got)
	}
	if _, err := f.svc.GetPresence(ctx, alice, ops.GetPresenceRequest{UserIDs: []string{"dave"}}); err != nil {
		t.Errorf("presence of a new contact: %v", err)
	}
	// Later changes reach the new contact.
	if _, err := f.svc.SetPresence(ctx, dave, ops.SetPresenceRequest{Show: "away"}); err != nil {
		t.Fatal(err)
	}
	if got := pushes[presence.Presence](t, aliceB, "presence"); len(got) != 2 || got[1].Show != "away" {
		t.Errorf("alice's presence pushes after dave went away: %+v", got)
	}

	if _, err := f.svc.RemoveContact(ctx, alice, ops.ContactRequest{UserID: "dave"}); err != nil {
		t.Fatal(err)
	}
	if got := pushes[ops.ContactPush](t, daveConn, "contact"); len(got) != 2 || got[1].Change != "removed" || got[1].User.ID != "alice" {
		t.Errorf("dave after the removal: %+v", got)
	}
	before := len(pushes[presence.Presence](t, aliceB, "presence"))
	if _, err := f.svc.SetPresence(ctx, dave, ops.SetPresenceRequest{Show: "chat"}); err != nil {
		t.Fatal(err)
	}
	if got := pushes[presence.Presence](t, aliceB, "presence"); len(got) != before {
		t.Errorf("a removed contact still sees presence: %+v", got[before:])
	}
	if _, err := f.svc.GetPresence(ctx, alice, ops.GetPresenceRequest{UserIDs: []string{"dave"}}); codeOf(err) != apierr.Forbidden {
		t.Errorf("presence of a removed contact: %v", err)
	}
}

func TestProfilePushReachesContacts(t *testing.T) {
	f := newFixture(t)
	f.backend.usePeople()
	ctx := context.Background()
	aliceA, aliceB, bobConn, carolConn := &inbox{}, &inbox{}, &inbox{}, &inbox{}
	alice := f.caller(t, "alice", aliceA)
	f.caller(t, "alice", aliceB)
	f.caller(t, "bob", bobConn)
	f.caller(t, "carol", carolConn) // no contact of alice's
	res, err := f.svc.SetProfile(ctx, alice, ops.SetProfileRequest{Properties: map[string]string{"title": "CTO", "city": "Oslo"}})
	if err != nil || res.User.Properties["title"] != "CTO" {
		t.Fatalf("setProfile: %+v %v", res, err)
	}
	if got := pushes[ops.ProfilePush](t, bobConn, "profile"); len(got) != 1 || got[0].User.ID != "alice" || got[0].User.Properties["city"] != "Oslo" {
		t.Errorf("bob: %+v", got)
	}
	if got := pushes[ops.ProfilePush](t, aliceB, "profile"); len(got) != 1 {
		t.Errorf("alice's other connection: %+v", got)
	}
	if got := pushes[ops.ProfilePush](t, aliceA, "profile"); len(got) != 0 {
		t.Errorf("the calling connection: %+v", got)
	}
	if got := pushes[ops.ProfilePush](t, carolConn, "profile"); len(got) != 0 {
		t.Errorf("a stranger got alice's profile: %+v", got)
	}
	res, err = f.svc.DeleteProfileProperty(ctx, alice, ops.DeleteProfilePropertyRequest{Name: "city"})
	if err != nil || len(res.User.Properties) != 1 {
		t.Fatalf("deleteProfileProperty: %+v %v", res, err)
	}
	if got := pushes[ops.ProfilePush](t, bobConn, "profile"); len(got) != 2 || got[1].User.Properties["city"] != "" {
		t.Errorf("bob after the delete: %+v", got)
	}
}

var _ hub.Conn = (*inbox)(nil)

// FuzzPeoplePayloads sends any payload to the people operations: each
// answers or refuses with invalid_argument, payload_too_large or the
// backend's not_found, never anything else; what reaches the backend keeps
// the limits.
func FuzzPeoplePayloads(f *testing.F) {
	seeds := []struct{ op, body string }{
		{ops.OpSearchUsers, `{"query":"bo","page":1,"pageSize":5}`},
		{ops.OpSearchUsers, `{"query":" \t "}`},
		{ops.OpSearchUsers, `{"query":"` + strings.Repeat("é", 200) + `"}`},
		{ops.OpSearchUsers, `{"query":"a","pageSize":1e400}`},
		{ops.OpAddContact, `{"userId":"dave"}`},
		{ops.OpAddContact, `{"userId":["dave"]}`},
		{ops.OpRemoveContact, `{"userId":"ghost"}`},
		{ops.OpSetProfile, `{"properties":{"title":"CTO"}}`},
		{ops.OpSetProfile, `{"properties":null}`},
		{ops.OpSetProfile, `{"properties":{"":"x"}}`},
		{ops.OpDeleteProfileProperty, `{"name":"title"}`},
		{ops.OpDeleteProfileProperty, `{"name":"\u0000"}`},
		{ops.OpSearchUsers, `[]`},
		{ops.OpSetProfile, "\xff"},
	}
	for _, s := range seeds {
		f.Add(s.op, []byte(s.body))
	}
	fx := newFixture(f)
	fx.backend.usePeople()
	alice := fx.caller(f, "alice", nil)
	names := []string{ops.OpSearchUsers, ops.OpAddContact, ops.OpRemoveContact, ops.OpSetProfile, ops.OpDeleteProfileProperty}
	f.Fuzz(func(t *testing.T, op string, payload []byte) {
		if !slices.Contains(names, op) {
			op = names[len(op)%len(names)]
		}
		_, err := fx.svc.Call(context.Background(), alice, op, payload)
		if err != nil {
			switch codeOf(err) {
			case apierr.InvalidArgument, apierr.PayloadTooLarge, apierr.NotFound:
			default:
				t.Fatalf("%s %q: %v", op, payload, err)
			}
			return
		}
		if op == ops.OpSearchUsers {
			fx.backend.mu.Lock()
			q := fx.backend.searched
			fx.backend.mu.Unlock()
			if q == "" || q != strings.TrimSpace(q) || len(q) > ecbserver.MaxSearchQueryBytes {
				t.Fatalf("the backend was asked %q for %q", q, payload)
			}
		}
	})
}
