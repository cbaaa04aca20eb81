package backend_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// optionalCall runs one of the three optional calls with a valid request.
type optionalCall struct {
	op   string
	call func(ctx context.Context, c *backend.Client) (any, error)
}

var optionalCalls = []optionalCall{
	{"markRead", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.MarkRead(ctx, &ecbserver.MarkReadRequest{UserID: "u", ThreadID: "t", MessageID: "m"})
	}},
	{"addParticipants", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.AddParticipants(ctx, &ecbserver.AddParticipantsRequest{UserID: "u", ThreadID: "t", Participants: []string{"v"}})
	}},
	{"leaveThread", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.LeaveThread(ctx, &ecbserver.LeaveThreadRequest{UserID: "u", ThreadID: "t"})
	}},
	{"searchUsers", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.SearchUsers(ctx, &ecbserver.SearchUsersRequest{UserID: "u", Query: "v"})
	}},
	{"addContact", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.AddContact(ctx, &ecbserver.ContactRequest{UserID: "u", ContactID: "v"})
	}},
	{"removeContact", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.RemoveContact(ctx, &ecbserver.ContactRequest{UserID: "u", ContactID: "v"})
	}},
	{"setProfile", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.SetProfile(ctx, &ecbserver.SetProfileRequest{UserID: "u", Properties: map[string]string{"k": "v"}})
	}},
	{"deleteProfileProperty", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.DeleteProfileProperty(ctx, &ecbserver.DeleteProfilePropertyRequest{UserID: "u", Name: "k"})
	}},
	// Contract 1.4.
	{"joinThread", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.JoinThread(ctx, &ecbserver.JoinThreadRequest{UserID: "u", ThreadID: "t"})
	}},
	{"getPublicThreads", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.GetPublicThreads(ctx, &ecbserver.GetPublicThreadsRequest{UserID: "u"})
	}},
	{"removeParticipant", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.RemoveParticipant(ctx, &ecbserver.RemoveParticipantRequest{UserID: "u", ThreadID: "t", ParticipantID: "v"})
	}},
	{"updateThread", func(ctx context.Context, c *backend.Client) (any, error) {
		subject := "s"
		return c.UpdateThread(ctx, &ecbserver.UpdateThreadRequest{UserID: "u", ThreadID: "t", Subject: &subject})
	}},
	{"deleteMessage", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.DeleteMessage(ctx, &ecbserver.DeleteMessageRequest{UserID: "u", ThreadID: "t", MessageID: "m"})
	}},
	{"deleteThread", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.DeleteThread(ctx, &ecbserver.DeleteThreadRequest{UserID: "u", ThreadID: "t"})
	}},
	// Contract 1.5.
	{"editMessage", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.EditMessage(ctx, &ecbserver.EditMessageRequest{UserID: "u", ThreadID: "t", MessageID: "m", Body: "b"})
	}},
	{"react", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.React(ctx, &ecbserver.ReactionRequest{UserID: "u", ThreadID: "t", MessageID: "m", Reaction: "+1"})
	}},
	{"unreact", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.Unreact(ctx, &ecbserver.ReactionRequest{UserID: "u", ThreadID: "t", MessageID: "m", Reaction: "+1"})
	}},
	{"searchMessages", func(ctx context.Context, c *backend.Client) (any, error) {
		return c.SearchMessages(ctx, &ecbserver.SearchMessagesRequest{UserID: "u", Query: "q"})
	}},
}

const threadJSON = `{"id":"t","members":["u","v"],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}`

func TestOptionalCallsDecode(t *testing.T) {
	var gotPath string
	var gotBody []byte
	answers := map[string]string{
		"/ecb/v1/markRead":        `{"messageId":"m9","unread":2}`,
		"/ecb/v1/addParticipants": `{"thread":` + threadJSON + `,"threadToken":"tt","added":["v"]}`,
		"/ecb/v1/leaveThread":     `{"thread":` + threadJSON + `}`,
	}
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		gotBody, _ = io.ReadAll(r.Body)
		if r.Header.Get(ecbserver.HeaderIdempotencyKey) != "" {
			t.Errorf("%s: an Idempotency-Key on a call that has none", r.URL.Path)
		}
		_, _ = w.Write([]byte(answers[r.URL.Path]))
	})
	ctx := context.Background()

	mr, err := c.MarkRead(ctx, &ecbserver.MarkReadRequest{UserID: "u", ThreadID: "t", MessageID: "m1"})
	if err != nil || mr.MessageID != "m9" || mr.Unread == nil || *mr.Unread != 2 {
		t.Fatalf("MarkRead: %+v %v", mr, err)
	}
	if gotPath != "/ecb/v1/markRead" || string(gotBody) != `{"userId":"u","threadId":"t","messageId":"m1"}` {
		t.Fatalf("MarkRead sent %s %s", gotPath, gotBody)
	}

	ap, err := c.AddParticipants(ctx, &ecbserver.AddParticipantsRequest{UserID: "u", ThreadID: "t", Participants: []string{"v", "w"}})
	if err != nil || ap.Thread.ID != "t" || ap.ThreadToken != "tt" || !slices.Equal(ap.Added, []string{"v"}) {
		t.Fatalf("AddParticipants: %+v %v", ap, err)
	}
	if gotPath != "/ecb/v1/addParticipants" || string(gotBody) != `{"userId":"u","threadId":"t","participants":["v","w"]}` {
		t.Fatalf("AddParticipants sent %s %s", gotPath, gotBody)
	}

	lt, err := c.LeaveThread(ctx, &ecbserver.LeaveThreadRequest{UserID: "v", ThreadID: "t"})
	if err != nil || lt.Thread.ID != "t" || !slices.Equal(lt.Thread.Members, []string{"u", "v"}) {
		t.Fatalf("LeaveThread: %+v %v", lt, err)
	}
	if gotPath != "/ecb/v1/leaveThread" || string(gotBody) != `{"userId":"v","threadId":"t"}` {
		t.Fatalf("LeaveThread sent %s %s", gotPath, gotBody)
	}
}

func TestOptionalCallsRefuseUnusableAnswers(t *testing.T) {
	cases := []struct {
		name, path, body string
	}{
		{"markRead negative unread", "/ecb/v1/markRead", `{"unread":-1}`},
		{"markRead not JSON", "/ecb/v1/markRead", `<html>`},
		{"addParticipants no token", "/ecb/v1/addParticipants", `{"thread":` + threadJSON + `,"added":[]}`},
		{"addParticipants no thread id", "/ecb/v1/addParticipants", `{"thread":{},"threadToken":"tt","added":[]}`},
		{"addParticipants empty id added", "/ecb/v1/addParticipants", `{"thread":` + threadJSON + `,"threadToken":"tt","added":[""]}`},
		{"leaveThread no thread", "/ecb/v1/leaveThread", `{}`},
		{"searchUsers no users", "/ecb/v1/searchUsers", `{}`},
		{"searchUsers user without id", "/ecb/v1/searchUsers", `{"users":[{"name":"V"}]}`},
		{"addContact another contact", "/ecb/v1/addContact", `{"contact":{"id":"w","name":"W"},"user":{"id":"u","name":"U"}}`},
		{"removeContact no user", "/ecb/v1/removeContact", `{"contact":{"id":"v","name":"V"}}`},
		{"setProfile another user", "/ecb/v1/setProfile", `{"user":{"id":"x","name":"X"}}`},
		{"deleteProfileProperty no user", "/ecb/v1/deleteProfileProperty", `{}`},
		{"joinThread no token", "/ecb/v1/joinThread", `{"thread":` + threadJSON + `}`},
		{"joinThread another thread", "/ecb/v1/joinThread", `{"thread":{"id":"x"},"threadToken":"tt"}`},
		{"getPublicThreads no id", "/ecb/v1/getPublicThreads", `{"threads":[{}]}`},
		{"removeParticipant another thread", "/ecb/v1/removeParticipant", `{"thread":{"id":"x"}}`},
		{"updateThread no thread", "/ecb/v1/updateThread", `{}`},
		{"deleteMessage not deleted", "/ecb/v1/deleteMessage", `{"message":{"id":"m"}}`},
		{"deleteMessage another message", "/ecb/v1/deleteMessage", `{"message":{"id":"x","deleted":true}}`},
		{"deleteThread no thread", "/ecb/v1/deleteThread", `{}`},
		{"editMessage no editedAt", "/ecb/v1/editMessage", `{"message":{"id":"m"}}`},
		{"editMessage another message", "/ecb/v1/editMessage", `{"message":{"id":"x","editedAt":"2026-01-01T00:00:00Z"}}`},
		{"react another message", "/ecb/v1/react", `{"message":{"id":"x"},"changed":true}`},
		{"react negative count", "/ecb/v1/react", `{"message":{"id":"m","reactions":[{"reaction":"+1","count":-1}]}}`},
		{"unreact unnamed reaction", "/ecb/v1/unreact", `{"message":{"id":"m","reactions":[{"count":1}]}}`},
		{"searchMessages no token", "/ecb/v1/searchMessages", `{"hits":[{"message":{"id":"m","threadId":"t"}}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tc.path {
					_, _ = w.Write([]byte(tc.body))
					return
				}
				w.WriteHeader(http.StatusTeapot)
			})
			for _, oc := range optionalCalls {
				if "/ecb/v1/"+oc.op != tc.path {
					continue
				}
				if _, err := oc.call(context.Background(), c); apierr.From(err).Code != apierr.BackendError {
					t.Fatalf("%s: %v, want backend_error", tc.name, err)
				}
			}
		})
	}
	// An empty markRead answer is fine: both fields are optional. A missing
	// added list reads as [].
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/addParticipants") {
			_, _ = w.Write([]byte(`{"thread":` + threadJSON + `,"threadToken":"tt"}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	})
	if mr, err := c.MarkRead(context.Background(), &ecbserver.MarkReadRequest{UserID: "u", ThreadID: "t", MessageID: "m"}); err != nil || mr.Unread != nil || mr.MessageID != "" {
		t.Fatalf("empty markRead answer: %+v %v", mr, err)
	}
	if ap, err := c.AddParticipants(context.Background(), &ecbserver.AddParticipantsRequest{UserID: "u", ThreadID: "t", Participants: []string{"v"}}); err != nil || ap.Added == nil {
		t.Fatalf("addParticipants without added: %+v %v", ap, err)
	}
}

// TestNotImplementedIsNotFound: a 501 becomes not_found with a message that
// names the call, and never opens the breaker; a pre-1.1 backend's 404 is
// not_found too.
func TestNotImplementedIsNotFound(t *testing.T) {
	for _, answer := range []struct {
		name, body string
	}{
		{"error body", `{"error":{"code":"not_implemented","message":"this backend does not implement it"}}`},
		{"no body", ``},
		{"foreign body", `<h1>501 Not Implemented</h1>`},
	} {
		t.Run(answer.name, func(t *testing.T) {
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotImplemented)
				_, _ = w.Write([]byte(answer.body))
			}) // BreakerFailures is 2
			for range 3 {
				for _, oc := range optionalCalls {
					_, err := oc.call(context.Background(), c)
					e := apierr.From(err)
					if e.Code != apierr.NotFound || e.Message != "the backend does not support "+oc.op {
						t.Fatalf("%s: %v (%q), want not_found %q", oc.op, err, e.Message, "the backend does not support "+oc.op)
					}
				}
			}
			if !c.Healthy() {
				t.Fatal("501 answers opened the circuit breaker")
			}
		})
	}

	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such operation: /markRead"}}`))
	})
	if _, err := c.MarkRead(context.Background(), &ecbserver.MarkReadRequest{UserID: "u", ThreadID: "t", MessageID: "m"}); apierr.From(err).Code != apierr.NotFound {
		t.Fatalf("pre-1.1 backend: %v", err)
	}
	// Other 5xx still count as failures.
	c = newClient(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	for range 2 {
		if _, err := c.LeaveThread(context.Background(), &ecbserver.LeaveThreadRequest{UserID: "u", ThreadID: "t"}); apierr.From(err).Code != apierr.BackendUnavailable {
			t.Fatalf("502: %v", err)
		}
	}
	if c.Healthy() {
		t.Fatal("502 answers did not open the breaker")
	}
}

// coreBackend is a contract 1.0 backend built on the SDK: no optional
// interface, so the SDK's handler answers their paths 501 by itself.
type coreBackend struct{}

var errCore = ecbserver.Forbidden("not in this test")

func (coreBackend) Authenticate(context.Context, *ecbserver.AuthenticateRequest) (*ecbserver.AuthenticateResponse, error) {
	return nil, errCore
}

func (coreBackend) GetContacts(context.Context, *ecbserver.GetContactsRequest) (*ecbserver.GetContactsResponse, error) {
	return nil, errCore
}

func (coreBackend) GetThreads(context.Context, *ecbserver.GetThreadsRequest) (*ecbserver.GetThreadsResponse, error) {
	return nil, errCore
}

func (coreBackend) CreateThread(context.Context, *ecbserver.CreateThreadRequest) (*ecbserver.CreateThreadResponse, error) {
	return nil, errCore
}

func (coreBackend) GetThread(context.Context, *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error) {
	return nil, errCore
}

func (coreBackend) AddThreadMessage(context.Context, *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	return nil, errCore
}

// TestNotImplementedThroughTheSDK runs ECB's client against the SDK's real
// handler for a backend without the optional interfaces.
func TestNotImplementedThroughTheSDK(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/ecb/v1/", http.StripPrefix("/ecb/v1", ecbserver.NewHandler([]byte(secret), coreBackend{}, ecbserver.HandlerOptions{})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := backend.New(backend.Config{URL: srv.URL + "/ecb/v1", Secret: secret, BreakerFailures: 1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, oc := range optionalCalls {
		_, err := oc.call(context.Background(), c)
		if e := apierr.From(err); e.Code != apierr.NotFound || !strings.Contains(e.Message, oc.op) {
			t.Fatalf("%s: %v", oc.op, err)
		}
	}
	if !c.Healthy() {
		t.Fatal("the breaker opened")
	}
}

// roundTrip is an http.RoundTripper made of a function.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzOptionalAnswers feeds arbitrary answers to the three optional calls:
// never a panic, a success only for a 2xx with the required fields, and
// every failure one of the client codes the contract can lead to.
func FuzzOptionalAnswers(f *testing.F) {
	f.Add(200, `{"messageId":"m","unread":1}`)
	f.Add(200, `{"thread":`+threadJSON+`,"threadToken":"tt","added":["v"]}`)
	f.Add(200, `{"thread":`+threadJSON+`}`)
	f.Add(200, `{"unread":-5}`)
	f.Add(200, `{"thread":null,"added":[null]}`)
	f.Add(501, `{"error":{"code":"not_implemented","message":"no"}}`)
	f.Add(404, `{"error":{"code":"not_implemented","message":"odd"}}`)
	f.Add(403, `{"error":{"code":"forbidden","message":"no"}}`)
	f.Add(500, `boom`)
	f.Add(302, ``)
	f.Add(200, `[`)
	f.Add(200, `{"users":[{"id":"v","name":"V","properties":{"k":"v"}}]}`)
	f.Add(200, `{"contact":{"id":"v","name":"V"},"user":{"id":"u","name":"U"}}`)
	f.Add(200, `{"user":{"id":"u","name":"U","properties":{"k":"v"}}}`)
	f.Add(200, `{"user":{"id":"u","properties":{"k":7}}}`)
	f.Add(200, `{"threads":[`+threadJSON+`]}`)
	f.Add(200, `{"message":{"id":"m","deleted":true}}`)
	f.Add(200, `{"thread":`+threadJSON+`,"threadToken":"tt","joined":true}`)
	f.Add(200, `{"message":{"id":"m","editedAt":"2026-01-01T00:00:00Z"}}`)
	f.Add(200, `{"message":{"id":"m","reactions":[{"reaction":"+1","count":2,"me":true}]},"changed":true}`)
	f.Add(200, `{"hits":[{"message":{"id":"m","threadId":"t"},"threadToken":"tt"}],"nextCursor":"c"}`)

	allowed := []apierr.Code{apierr.InvalidArgument, apierr.Unauthenticated, apierr.Forbidden, apierr.NotFound,
		apierr.Conflict, apierr.PayloadTooLarge, apierr.BackendError, apierr.BackendUnavailable}
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 200 || status > 599 {
			return
		}
		hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})}
		c, err := backend.New(backend.Config{URL: "http://backend.invalid/ecb/v1", Secret: secret}, hc, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, oc := range optionalCalls {
			resp, err := oc.call(context.Background(), c)
			if err == nil {
				if status/100 != 2 { // the client takes any 2xx as a success, as HTTP does
					t.Fatalf("%s: status %d %q accepted as %+v", oc.op, status, body, resp)
				}
				continue
			}
			var e *apierr.Error
			if !errors.As(err, &e) || !slices.Contains(allowed, e.Code) {
				t.Fatalf("%s: status %d %q: error %v", oc.op, status, body, err)
			}
			if status == http.StatusNotImplemented && (e.Code != apierr.NotFound || e.Message != "the backend does not support "+oc.op) {
				t.Fatalf("%s: 501 gave %v", oc.op, err)
			}
		}
	})
}

func TestPeopleCallsDecode(t *testing.T) {
	var gotPath, gotBody string
	answers := map[string]string{
		"/ecb/v1/searchUsers":           `{"users":[{"id":"v","name":"V","properties":{"title":"CTO"}}]}`,
		"/ecb/v1/addContact":            `{"contact":{"id":"v","name":"V"},"user":{"id":"u","name":"U"}}`,
		"/ecb/v1/removeContact":         `{"contact":{"id":"v","name":"V"},"user":{"id":"u","name":"U"}}`,
		"/ecb/v1/setProfile":            `{"user":{"id":"u","name":"U","properties":{"title":"CTO"}}}`,
		"/ecb/v1/deleteProfileProperty": `{"user":{"id":"u","name":"U"}}`,
	}
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		_, _ = w.Write([]byte(answers[r.URL.Path]))
	})
	ctx := context.Background()
	su, err := c.SearchUsers(ctx, &ecbserver.SearchUsersRequest{UserID: "u", Query: "v"})
	if err != nil || len(su.Users) != 1 || su.Users[0].Properties["title"] != "CTO" {
		t.Fatalf("SearchUsers: %+v %v", su, err)
	}
	if gotPath != "/ecb/v1/searchUsers" || gotBody != `{"userId":"u","query":"v"}` {
		t.Fatalf("sent %s %s", gotPath, gotBody)
	}
	ac, err := c.AddContact(ctx, &ecbserver.ContactRequest{UserID: "u", ContactID: "v"})
	if err != nil || ac.Contact.Name != "V" || ac.User.Name != "U" || gotBody != `{"userId":"u","contactId":"v"}` {
		t.Fatalf("AddContact: %+v %v, sent %s", ac, err, gotBody)
	}
	if _, err := c.RemoveContact(ctx, &ecbserver.ContactRequest{UserID: "u", ContactID: "v"}); err != nil || gotPath != "/ecb/v1/removeContact" {
		t.Fatalf("RemoveContact: %v %s", err, gotPath)
	}
	sp, err := c.SetProfile(ctx, &ecbserver.SetProfileRequest{UserID: "u", Properties: map[string]string{"title": "CTO"}})
	if err != nil || sp.User.Properties["title"] != "CTO" || gotBody != `{"userId":"u","properties":{"title":"CTO"}}` {
		t.Fatalf("SetProfile: %+v %v, sent %s", sp, err, gotBody)
	}
	dp, err := c.DeleteProfileProperty(ctx, &ecbserver.DeleteProfilePropertyRequest{UserID: "u", Name: "title"})
	if err != nil || dp.User.Properties != nil || gotBody != `{"userId":"u","name":"title"}` {
		t.Fatalf("DeleteProfileProperty: %+v %v, sent %s", dp, err, gotBody)
	}
}
