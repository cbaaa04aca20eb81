package backend_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/openapitest"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// TestClientRequestsMatchTheContract validates every request ECB's real
// client sends against api/backend.yaml (the reference backend's answers are
// validated in internal/refbackend), so the client and the contract cannot drift.
func TestClientRequestsMatchTheContract(t *testing.T) {
	v, err := openapitest.Load("backend.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	answers := map[string]string{
		"/authenticate":          `{"userToken":"a.b.c","user":{"id":"u","name":"U"}}`,
		"/getContacts":           `{"contacts":[]}`,
		"/getThreads":            `{"threads":[]}`,
		"/createThread":          `{"thread":{"id":"t","members":["u","v"],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"},"threadToken":"a.b.c","message":{"id":"m","threadId":"t","authorId":"u","body":"b","createdAt":"2026-01-01T00:00:00Z"}}`,
		"/getThread":             `{"thread":{"id":"t","members":["u"],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"},"threadToken":"a.b.c","messages":[]}`,
		"/addThreadMessage":      `{"message":{"id":"m","threadId":"t","authorId":"u","body":"b","createdAt":"2026-01-01T00:00:00Z"},"threadToken":"a.b.c"}`,
		"/markRead":              `{"messageId":"m","unread":0}`,
		"/addParticipants":       `{"thread":{"id":"t","members":["u","v"],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"},"threadToken":"a.b.c","added":["v"]}`,
		"/leaveThread":           `{"thread":{"id":"t","members":["v"],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}}`,
		"/createSupportThread":   `{"thread":{"id":"t","subject":"q","members":["v","a"],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"},"visitorToken":"a.b.c","agentToken":"d.e.f"}`,
		"/searchUsers":           `{"users":[{"id":"v","name":"V"}]}`,
		"/addContact":            `{"contact":{"id":"v","name":"V"},"user":{"id":"u","name":"U"}}`,
		"/removeContact":         `{"contact":{"id":"v","name":"V"},"user":{"id":"u","name":"U"}}`,
		"/setProfile":            `{"user":{"id":"u","name":"U","properties":{"title":"CTO"}}}`,
		"/deleteProfileProperty": `{"user":{"id":"u","name":"U"}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		check := r.Clone(context.Background())
		check.Body = io.NopCloser(bytes.NewReader(body))
		check.URL.Host, check.Host, check.URL.Scheme = "127.0.0.1:8081", "127.0.0.1:8081", "http"
		mu.Lock()
		ok, verrs := v.ValidateHttpRequestSync(check)
		op := strings.TrimPrefix(r.URL.Path, "/ecb/v1")
		seen[op] = true
		mu.Unlock()
		if !ok {
			for _, e := range verrs {
				t.Errorf("%s: %s: %s", r.URL.Path, e.Message, e.Reason)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answers[op]))
	}))
	defer srv.Close()
	c, err := backend.New(backend.Config{URL: srv.URL + "/ecb/v1", Secret: secret}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := []func() error{
		func() error {
			_, err := c.Authenticate(ctx, &ecbserver.AuthenticateRequest{AccessToken: "x"})
			return err
		},
		func() error { _, err := c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"}); return err },
		func() error { _, err := c.GetThreads(ctx, &ecbserver.GetThreadsRequest{UserID: "u"}); return err },
		func() error {
			_, err := c.CreateThread(ctx, &ecbserver.CreateThreadRequest{UserID: "u", Participants: []string{"v"}, Subject: "s", Message: ecbserver.NewMessage{Body: "b", ClientMessageID: "c1", Data: []byte(`{"k":1}`)}})
			return err
		},
		func() error {
			_, err := c.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: "u", ThreadID: "t", Before: "cur", Limit: 10})
			return err
		},
		func() error {
			_, err := c.AddThreadMessage(ctx, &ecbserver.AddThreadMessageRequest{UserID: "u", ThreadID: "t", Body: "b", ClientMessageID: "c2"})
			return err
		},
		func() error {
			_, err := c.MarkRead(ctx, &ecbserver.MarkReadRequest{UserID: "u", ThreadID: "t", MessageID: "m"})
			return err
		},
		func() error {
			_, err := c.AddParticipants(ctx, &ecbserver.AddParticipantsRequest{UserID: "u", ThreadID: "t", Participants: []string{"v"}})
			return err
		},
		func() error {
			_, err := c.LeaveThread(ctx, &ecbserver.LeaveThreadRequest{UserID: "u", ThreadID: "t"})
			return err
		},
		func() error {
			_, err := c.CreateSupportThread(ctx, &ecbserver.CreateSupportThreadRequest{RequestID: "r", Workgroup: "support", VisitorID: "v", AgentID: "a", Question: "q", Metadata: []byte(`{"email":"x"}`), OperationID: "op"})
			return err
		},
		func() error {
			_, err := c.SearchUsers(ctx, &ecbserver.SearchUsersRequest{UserID: "u", Query: "v"})
			return err
		},
		func() error {
			_, err := c.AddContact(ctx, &ecbserver.ContactRequest{UserID: "u", ContactID: "v"})
			return err
		},
		func() error {
			_, err := c.RemoveContact(ctx, &ecbserver.ContactRequest{UserID: "u", ContactID: "v"})
			return err
		},
		func() error {
			_, err := c.SetProfile(ctx, &ecbserver.SetProfileRequest{UserID: "u", Properties: map[string]string{"title": "CTO", "x.y": ""}})
			return err
		},
		func() error {
			_, err := c.DeleteProfileProperty(ctx, &ecbserver.DeleteProfilePropertyRequest{UserID: "u", Name: "title"})
			return err
		},
	}
	for _, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("%v", err)
		}
	}
	if len(seen) != len(calls) {
		t.Errorf("validated %d of the %d contract calls", len(seen), len(calls))
	}
}

func TestBadSignatureIsAnOperatorProblem(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"error":{"code":"bad_signature","message":"signature mismatch"}}`))
	})
	_, err := c.GetContacts(context.Background(), &ecbserver.GetContactsRequest{UserID: "u"})
	if apierr.From(err).Code != apierr.BackendError {
		t.Fatalf("bad_signature mapped to %v, want backend_error (not the user's fault)", err)
	}
}
