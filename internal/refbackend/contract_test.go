package refbackend

// The contract test: every call the tests send through env.call, and every
// answer the reference backend gives to it, success or error, is validated
// against api/backend.yaml. A change to the contract types, the SDK handler or
// the reference backend that the OpenAPI file does not describe fails here, so
// the normative file and the code cannot drift apart.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	validator "github.com/pb33f/libopenapi-validator"

	"github.com/ecbridge/ecb/internal/openapitest"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

type contractValidator struct {
	mu sync.Mutex // the validator's caches are not documented as goroutine-safe
	v  validator.Validator
}

var loadContract = sync.OnceValues(func() (*contractValidator, error) {
	v, err := openapitest.Load("backend.yaml")
	if err != nil {
		return nil, err
	}
	return &contractValidator{v: v}, nil
})

// checkContract validates one exchange. The request and response bodies were
// already read, so fresh copies are handed to the validator.
func checkContract(tb testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte, validateRequest bool) {
	tb.Helper()
	cv, err := loadContract()
	if err != nil {
		tb.Fatal(err)
	}
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	vresp := *resp
	vresp.Body = io.NopCloser(bytes.NewReader(respBody))
	vresp.Request = vreq

	cv.mu.Lock()
	defer cv.mu.Unlock()
	if validateRequest {
		if ok, errs := cv.v.ValidateHttpRequestSync(vreq); !ok {
			tb.Errorf("request %s %s breaks api/backend.yaml: %s\nbody: %s", req.Method, req.URL.Path, openapitest.Describe(errs), reqBody)
		}
		vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	if ok, errs := cv.v.ValidateHttpResponse(vreq, &vresp); !ok {
		tb.Errorf("response %d to %s breaks api/backend.yaml: %s\nbody: %s", resp.StatusCode, req.URL.Path, openapitest.Describe(errs), respBody)
	}
}

// TestContractCoverage runs every operation to success and to each error
// status the contract lists, all through the validating env.call, and checks
// that the run really covered them.
func TestContractCoverage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seen := map[string]bool{}
	mark := func(path string, status int) { seen[fmt.Sprintf("%s %d", path, status)] = true }
	okCall := func(path string, req, out any, o callOpts) {
		t.Helper()
		e.ok(path, req, out, o)
		mark(path, 200)
	}
	failCall := func(path string, req any, o callOpts, status int, code string) {
		t.Helper()
		e.fails(path, req, o, status, code)
		mark(path, status)
	}

	var auth ecbserver.AuthenticateResponse
	okCall(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: e.login("alice")}, &auth, callOpts{})
	failCall(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: "nope"}, callOpts{}, 401, ecbserver.CodeUnauthenticated)
	failCall(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: "x"}, callOpts{secret: []byte("wrong")}, 401, ecbserver.CodeBadSignature)
	failCall(ecbserver.PathAuthenticate, nil, callOpts{rawBody: []byte(`{"accessToken":`), invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)

	var contacts ecbserver.GetContactsResponse
	okCall(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "alice"}, &contacts, callOpts{})
	okCall(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "agent1"}, &contacts, callOpts{}) // empty list
	failCall(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "nobody"}, callOpts{}, 404, ecbserver.CodeNotFound)

	var threads ecbserver.GetThreadsResponse
	okCall(ecbserver.PathGetThreads, ecbserver.GetThreadsRequest{UserID: "alice"}, &threads, callOpts{}) // none yet

	var created ecbserver.CreateThreadResponse
	okCall(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"bob"}, Subject: "Lunch",
		Message: ecbserver.NewMessage{Body: "Noon?", ClientMessageID: "c-1", Data: []byte(`{"mood":"hungry"}`)}}, &created, callOpts{idempotencyKey: "c-1"})
	okCall(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "bob", Participants: []string{"carol"},
		Message: ecbserver.NewMessage{Body: "hi"}}, &created, callOpts{})
	failCall(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"agent1"},
		Message: ecbserver.NewMessage{Body: "hi"}}, callOpts{}, 403, ecbserver.CodeForbidden)
	failCall(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"bob"},
		Message: ecbserver.NewMessage{Body: "other", ClientMessageID: "c-1"}}, callOpts{idempotencyKey: "c-1"}, 409, ecbserver.CodeConflict)
	failCall(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"ghost"},
		Message: ecbserver.NewMessage{Body: "hi"}}, callOpts{}, 400, ecbserver.CodeInvalidArgument)
	failCall(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "ghost", Participants: []string{"bob"},
		Message: ecbserver.NewMessage{Body: "hi"}}, callOpts{}, 404, ecbserver.CodeNotFound)

	okCall(ecbserver.PathGetThreads, ecbserver.GetThreadsRequest{UserID: "bob"}, &threads, callOpts{})
	if len(threads.Threads) != 2 {
		t.Fatalf("bob has %d threads", len(threads.Threads))
	}
	id := threads.Threads[1].Thread.ID // alice's, the older one

	var added ecbserver.AddThreadMessageResponse
	okCall(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: id, Body: "Sure",
		ClientMessageID: "m-1", Data: []byte(`[1,2]`)}, &added, callOpts{idempotencyKey: "m-1"})
	failCall(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: id, Body: "Changed",
		ClientMessageID: "m-1"}, callOpts{idempotencyKey: "m-1"}, 409, ecbserver.CodeConflict)
	failCall(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "carol", ThreadID: id, Body: "hi"}, callOpts{}, 403, ecbserver.CodeForbidden)
	failCall(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: "t_missing", Body: "hi"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: id, Body: "   "}, callOpts{}, 400, ecbserver.CodeInvalidArgument)

	var page ecbserver.GetThreadResponse
	okCall(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "alice", ThreadID: id, Limit: 1}, &page, callOpts{})
	if page.NextCursor == "" {
		t.Fatal("no cursor on a partial page")
	}
	okCall(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "alice", ThreadID: id, Before: page.NextCursor}, &page, callOpts{})
	failCall(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "carol", ThreadID: id}, callOpts{}, 403, ecbserver.CodeForbidden)
	failCall(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "alice", ThreadID: "t_missing"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "alice", ThreadID: id, Before: "!!"}, callOpts{}, 400, ecbserver.CodeInvalidArgument)

	// The optional calls of contract 1.1.
	okCall(ecbserver.PathGetThreads, ecbserver.GetThreadsRequest{UserID: "alice"}, &threads, callOpts{}) // with unread counts
	var marked ecbserver.MarkReadResponse
	okCall(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: "alice", ThreadID: id, MessageID: added.Message.ID}, &marked, callOpts{})
	if marked.MessageID != added.Message.ID || marked.Unread == nil || *marked.Unread != 0 {
		t.Fatalf("markRead: %+v", marked)
	}
	failCall(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: "carol", ThreadID: id, MessageID: added.Message.ID}, callOpts{}, 403, ecbserver.CodeForbidden)
	failCall(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: "alice", ThreadID: id, MessageID: "m_missing"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: "alice", ThreadID: id}, callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)

	var grown ecbserver.AddParticipantsResponse
	okCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: id, Participants: []string{"carol", "bob"}}, &grown, callOpts{})
	okCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: id, Participants: []string{"bob"}}, &grown, callOpts{}) // added: []
	failCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "bob", ThreadID: id, Participants: []string{"carol"}}, callOpts{}, 403, ecbserver.CodeForbidden)
	failCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: id, Participants: []string{"ghost"}}, callOpts{}, 400, ecbserver.CodeInvalidArgument)
	failCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: "t_missing", Participants: []string{"carol"}}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: id, Participants: []string{}}, callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)

	var left ecbserver.LeaveThreadResponse
	okCall(ecbserver.PathLeaveThread, ecbserver.LeaveThreadRequest{UserID: "carol", ThreadID: id}, &left, callOpts{})
	failCall(ecbserver.PathLeaveThread, ecbserver.LeaveThreadRequest{UserID: "carol", ThreadID: id}, callOpts{}, 403, ecbserver.CodeForbidden)
	failCall(ecbserver.PathLeaveThread, ecbserver.LeaveThreadRequest{UserID: "carol", ThreadID: "t_missing"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathLeaveThread, nil, callOpts{rawBody: []byte(`{"userId":"carol"}`), invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)

	// People (1.4): search, contacts, profile properties.
	var found ecbserver.SearchUsersResponse
	okCall(ecbserver.PathSearchUsers, ecbserver.SearchUsersRequest{UserID: "alice", Query: "agent"}, &found, callOpts{})
	if len(found.Users) != 2 || found.Users[0].ID != "agent1" {
		t.Errorf("searchUsers agent: %+v", found.Users)
	}
	okCall(ecbserver.PathSearchUsers, ecbserver.SearchUsersRequest{UserID: "alice", Query: "%"}, &found, callOpts{}) // a wildcard is a character
	if len(found.Users) != 0 {
		t.Errorf("searchUsers %%: %+v", found.Users)
	}
	failCall(ecbserver.PathSearchUsers, ecbserver.SearchUsersRequest{UserID: "ghost", Query: "a"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathSearchUsers, ecbserver.SearchUsersRequest{UserID: "alice", Query: ""}, callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)
	var contact ecbserver.ContactResponse
	okCall(ecbserver.PathAddContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "agent1"}, &contact, callOpts{})
	okCall(ecbserver.PathAddContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "agent1"}, &contact, callOpts{}) // twice is fine
	failCall(ecbserver.PathAddContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "ghost"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathAddContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "alice"}, callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)
	okCall(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "agent1"}, &contacts, callOpts{})
	if len(contacts.Contacts) != 1 || contacts.Contacts[0].ID != "alice" {
		t.Errorf("agent1's contacts after alice added them: %+v", contacts.Contacts)
	}
	okCall(ecbserver.PathRemoveContact, ecbserver.ContactRequest{UserID: "agent1", ContactID: "alice"}, &contact, callOpts{})
	okCall(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "alice"}, &contacts, callOpts{})
	for _, c := range contacts.Contacts {
		if c.ID == "agent1" {
			t.Errorf("agent1 still alice's contact after the removal")
		}
	}
	failCall(ecbserver.PathRemoveContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "ghost"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathRemoveContact, nil, callOpts{rawBody: []byte(`{"userId":"alice"}`), invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)
	var prof ecbserver.ProfileResponse
	okCall(ecbserver.PathSetProfile, ecbserver.SetProfileRequest{UserID: "bob", Properties: map[string]string{"title": "CTO", "city": "Oslo"}}, &prof, callOpts{})
	if prof.User.Properties["title"] != "CTO" || prof.User.Properties["city"] != "Oslo" {
		t.Errorf("setProfile: %+v", prof.User)
	}
	okCall(ecbserver.PathDeleteProfileProperty, ecbserver.DeleteProfilePropertyRequest{UserID: "bob", Name: "city"}, &prof, callOpts{})
	okCall(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "alice"}, &contacts, callOpts{})
	for _, c := range contacts.Contacts {
		if c.ID == "bob" && (c.Properties["title"] != "CTO" || len(c.Properties) != 1) {
			t.Errorf("bob as alice's contact: %+v", c)
		}
	}
	many := map[string]string{}
	for i := range ecbserver.MaxProfileProperties {
		many[fmt.Sprintf("p%d", i)] = "x"
	}
	failCall(ecbserver.PathSetProfile, ecbserver.SetProfileRequest{UserID: "bob", Properties: many}, callOpts{}, 400, ecbserver.CodeInvalidArgument) // 33 with title
	failCall(ecbserver.PathSetProfile, ecbserver.SetProfileRequest{UserID: "ghost", Properties: map[string]string{"a": "b"}}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathDeleteProfileProperty, ecbserver.DeleteProfilePropertyRequest{UserID: "ghost", Name: "a"}, callOpts{}, 404, ecbserver.CodeNotFound)
	failCall(ecbserver.PathDeleteProfileProperty, ecbserver.DeleteProfilePropertyRequest{UserID: "bob", Name: "a b"}, callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)

	// A backend that does not implement them answers 501, as documented.
	core := callOpts{base: e.coreOnlyServer()}
	failCall(ecbserver.PathSearchUsers, ecbserver.SearchUsersRequest{UserID: "alice", Query: "b"}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathAddContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "agent1"}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathRemoveContact, ecbserver.ContactRequest{UserID: "alice", ContactID: "agent1"}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathSetProfile, ecbserver.SetProfileRequest{UserID: "alice", Properties: map[string]string{"a": "b"}}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathDeleteProfileProperty, ecbserver.DeleteProfilePropertyRequest{UserID: "alice", Name: "a"}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: "alice", ThreadID: id, MessageID: added.Message.ID}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: "alice", ThreadID: id, Participants: []string{"carol"}}, core, 501, ecbserver.CodeNotImplemented)
	failCall(ecbserver.PathLeaveThread, ecbserver.LeaveThreadRequest{UserID: "bob", ThreadID: id}, core, 501, ecbserver.CodeNotImplemented)

	for _, path := range []string{ecbserver.PathAuthenticate, ecbserver.PathGetContacts, ecbserver.PathGetThreads,
		ecbserver.PathCreateThread, ecbserver.PathGetThread, ecbserver.PathAddThreadMessage,
		ecbserver.PathMarkRead, ecbserver.PathAddParticipants, ecbserver.PathLeaveThread,
		ecbserver.PathSearchUsers, ecbserver.PathAddContact, ecbserver.PathRemoveContact,
		ecbserver.PathSetProfile, ecbserver.PathDeleteProfileProperty} {
		if !seen[path+" 200"] {
			t.Errorf("%s never succeeded", path)
		}
	}
	for _, path := range []string{ecbserver.PathMarkRead, ecbserver.PathAddParticipants, ecbserver.PathLeaveThread} {
		for _, status := range []int{400, 403, 404, 501} {
			if !seen[fmt.Sprintf("%s %d", path, status)] {
				t.Errorf("%s never answered %d", path, status)
			}
		}
	}
	for _, status := range []int{400, 401, 403, 404, 409, 501} {
		found := false
		for k := range seen {
			found = found || strings.HasSuffix(k, fmt.Sprintf(" %d", status))
		}
		if !found {
			t.Errorf("no call answered %d", status)
		}
	}
}

// TestContractCatchesDrift makes sure the validation is not vacuous: answers
// and calls that break the contract are reported.
func TestContractCatchesDrift(t *testing.T) {
	t.Parallel()
	cv, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:8081/ecb/v1"
	signed := func(path, body string) *http.Request {
		r, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(ecbserver.HeaderRequestID, "r1")
		r.Header.Set(ecbserver.HeaderContractVersion, ecbserver.ContractVersion)
		return r
	}
	sign := func(r *http.Request, body string) *http.Request {
		ecbserver.SignRequest([]byte("k"), r, []byte(body), fixedNow)
		return r
	}

	requests := []struct {
		name  string
		req   *http.Request
		valid bool
	}{
		{"good", sign(signed(ecbserver.PathGetThread, `{"userId":"a","threadId":"t"}`), `{"userId":"a","threadId":"t"}`), true},
		{"missing threadId", sign(signed(ecbserver.PathGetThread, `{"userId":"a"}`), `{"userId":"a"}`), false},
		{"negative limit", sign(signed(ecbserver.PathGetThread, `{"userId":"a","threadId":"t","limit":-1}`), `{"userId":"a","threadId":"t","limit":-1}`), false},
		{"unsigned", signed(ecbserver.PathGetContacts, `{"userId":"a"}`), false},
		{"unknown operation", sign(signed("/getEverything", `{}`), `{}`), false},
		{"markRead", sign(signed(ecbserver.PathMarkRead, `{"userId":"a","threadId":"t","messageId":"m"}`), `{"userId":"a","threadId":"t","messageId":"m"}`), true},
		{"markRead without messageId", sign(signed(ecbserver.PathMarkRead, `{"userId":"a","threadId":"t"}`), `{"userId":"a","threadId":"t"}`), false},
		{"empty search", sign(signed(ecbserver.PathSearchUsers, `{"userId":"a","query":""}`), `{"userId":"a","query":""}`), false},
		{"bad property name", sign(signed(ecbserver.PathDeleteProfileProperty, `{"userId":"a","name":"a b"}`), `{"userId":"a","name":"a b"}`), false},
		{"no participants to add", sign(signed(ecbserver.PathAddParticipants, `{"userId":"a","threadId":"t","participants":[]}`), `{"userId":"a","threadId":"t","participants":[]}`), false},
	}
	for _, tt := range requests {
		cv.mu.Lock()
		ok, _ := cv.v.ValidateHttpRequestSync(tt.req)
		cv.mu.Unlock()
		if ok != tt.valid {
			t.Errorf("request %s: valid = %v, want %v", tt.name, ok, tt.valid)
		}
	}

	responses := []struct {
		name, path string
		status     int
		body       string
		valid      bool
	}{
		{"good", ecbserver.PathGetContacts, 200, `{"contacts":[{"id":"b","name":"B"}]}`, true},
		{"null list", ecbserver.PathGetContacts, 200, `{"contacts":null}`, false},
		// threadToken is optional since 1.5 (re-issued only when due); a
		// message without its id is still refused.
		{"no threadToken", ecbserver.PathAddThreadMessage, 200,
			`{"message":{"id":"m","threadId":"t","authorId":"a","body":"x","createdAt":"2026-01-02T03:04:05Z"}}`, true},
		{"no message id", ecbserver.PathGetThread, 200,
			`{"thread":{"id":"t","members":["a"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"messages":[]}`, false},
		{"bad time", ecbserver.PathAddThreadMessage, 200,
			`{"message":{"id":"m","threadId":"t","authorId":"a","body":"x","createdAt":"yesterday"},"threadToken":"x"}`, false},
		{"good error", ecbserver.PathGetThread, 404, `{"error":{"code":"not_found","message":"no"}}`, true},
		{"unknown code", ecbserver.PathGetThread, 404, `{"error":{"code":"gone","message":"no"}}`, false},
		{"undocumented status", ecbserver.PathGetThread, 418, `{"error":{"code":"internal","message":"teapot"}}`, false},
		{"501 on a required call", ecbserver.PathGetThread, 501, `{"error":{"code":"not_implemented","message":"no"}}`, false},
		{"501 on an optional call", ecbserver.PathLeaveThread, 501, `{"error":{"code":"not_implemented","message":"no"}}`, true},
		{"markRead empty", ecbserver.PathMarkRead, 200, `{}`, true},
		{"markRead negative unread", ecbserver.PathMarkRead, 200, `{"unread":-1}`, false},
		{"added missing", ecbserver.PathAddParticipants, 200,
			`{"thread":{"id":"t","members":["a"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"threadToken":"x"}`, false},
		{"leave without thread", ecbserver.PathLeaveThread, 200, `{}`, false},
		{"search without users", ecbserver.PathSearchUsers, 200, `{}`, false},
		{"property not a string", ecbserver.PathSetProfile, 200, `{"user":{"id":"a","name":"A","properties":{"n":1}}}`, false},
		{"profile", ecbserver.PathDeleteProfileProperty, 200, `{"user":{"id":"a","name":"A","properties":{"n":"1"}}}`, true},
		{"contact without user", ecbserver.PathAddContact, 200, `{"contact":{"id":"b","name":"B"}}`, false},
	}
	for _, tt := range responses {
		req := signed(tt.path, `{}`)
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(tt.body)), Request: req}
		cv.mu.Lock()
		ok, _ := cv.v.ValidateHttpResponse(req, resp)
		cv.mu.Unlock()
		if ok != tt.valid {
			t.Errorf("response %s: valid = %v, want %v", tt.name, ok, tt.valid)
		}
	}
}
