package ecbserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fake implements the optional interfaces too; coreOnly hides them.

func (f *fakeBackend) MarkRead(ctx context.Context, req *MarkReadRequest) (*MarkReadResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	unread := 0
	return &MarkReadResponse{MessageID: req.MessageID, Unread: &unread}, nil
}

func (f *fakeBackend) AddParticipants(ctx context.Context, req *AddParticipantsRequest) (*AddParticipantsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &AddParticipantsResponse{
		Thread:      Thread{ID: req.ThreadID, Members: append([]string{req.UserID}, req.Participants...), CreatedAt: fixedTime, UpdatedAt: fixedTime},
		ThreadToken: "tt",
		Added:       nil, // nil on purpose: must encode as []
	}, nil
}

func (f *fakeBackend) LeaveThread(ctx context.Context, req *LeaveThreadRequest) (*LeaveThreadResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &LeaveThreadResponse{Thread: Thread{ID: req.ThreadID, CreatedAt: fixedTime, UpdatedAt: fixedTime}}, nil
}

var (
	_ ReadMarker         = (*fakeBackend)(nil)
	_ ParticipantManager = (*fakeBackend)(nil)
)

// coreOnly exposes only the methods of Backend: embedding the interface hides
// the optional methods of the value inside from NewHandler's type assertions.
type coreOnly struct{ Backend }

// readOnlyMarks implements ReadMarker but not ParticipantManager.
type readOnlyMarks struct{ *fakeBackend }

func (r readOnlyMarks) AddParticipants() {} // not the interface's signature: must not count

var optionalPaths = []string{PathMarkRead, PathAddParticipants, PathLeaveThread}

func TestOptionalDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, body string
		want       string
		wantReq    any
	}{
		{PathMarkRead, `{"userId":"alice","threadId":"t1","messageId":"m7"}`,
			`{"messageId":"m7","unread":0}`,
			&MarkReadRequest{UserID: "alice", ThreadID: "t1", MessageID: "m7"}},
		{PathAddParticipants, `{"userId":"alice","threadId":"t1","participants":["bob","carol"],"future":1}`,
			`{"thread":{"id":"t1","members":["alice","bob","carol"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"threadToken":"tt","added":[]}`,
			&AddParticipantsRequest{UserID: "alice", ThreadID: "t1", Participants: []string{"bob", "carol"}}},
		{PathLeaveThread, `{"userId":"bob","threadId":"t1"}`,
			`{"thread":{"id":"t1","members":[],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}}`,
			&LeaveThreadRequest{UserID: "bob", ThreadID: "t1"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
			code, body := call(t, h, tt.path, tt.body, map[string]string{HeaderRequestID: "req-9", HeaderContractVersion: ContractVersion})
			if code != http.StatusOK || body != tt.want {
				t.Fatalf("got %d %s\nwant 200 %s", code, body, tt.want)
			}
			if fb.calls != 1 || fb.lastReqI != "req-9" {
				t.Fatalf("backend saw calls=%d requestID=%q", fb.calls, fb.lastReqI)
			}
			switch want := tt.wantReq.(type) {
			case *MarkReadRequest:
				if got := fb.lastReq.(*MarkReadRequest); *got != *want {
					t.Fatalf("decoded %+v", got)
				}
			case *AddParticipantsRequest:
				if got := fb.lastReq.(*AddParticipantsRequest); got.UserID != want.UserID || got.ThreadID != want.ThreadID ||
					!slices.Equal(got.Participants, want.Participants) {
					t.Fatalf("decoded %+v", got)
				}
			case *LeaveThreadRequest:
				if got := fb.lastReq.(*LeaveThreadRequest); *got != *want {
					t.Fatalf("decoded %+v", got)
				}
			}
		})
	}
}

// TestOptionalNotImplemented: a Backend without the optional interfaces gets
// 501 not_implemented on their paths, for any request, and is never called;
// unknown paths stay 404.
func TestOptionalNotImplemented(t *testing.T) {
	t.Parallel()
	fb := &fakeBackend{}
	h := NewHandler(testSecret, coreOnly{fb}, HandlerOptions{Logger: quietLogger()})
	for _, path := range optionalPaths {
		for _, tc := range []struct {
			name, method, body string
			sign               bool
		}{
			{"valid call", http.MethodPost, `{"userId":"a","threadId":"t","messageId":"m","participants":["b"]}`, true},
			{"unsigned", http.MethodPost, `{}`, false},
			{"GET", http.MethodGet, ``, true},
		} {
			r := httptest.NewRequest(tc.method, path, strings.NewReader(tc.body))
			if tc.sign {
				SignRequest(testSecret, r, []byte(tc.body), time.Now())
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkError(t, w, http.StatusNotImplemented, CodeNotImplemented)
			if !strings.Contains(w.Body.String(), "does not implement "+strings.TrimPrefix(path, "/")) {
				t.Errorf("%s %s: message %s", path, tc.name, w.Body)
			}
		}
	}
	if fb.calls != 0 {
		t.Fatalf("backend called %d times", fb.calls)
	}
	// The core calls still work, and a path outside the contract is 404.
	if code, body := call(t, h, PathGetContacts, `{"userId":"a"}`, nil); code != 200 {
		t.Fatalf("getContacts: %d %s", code, body)
	}
	r := httptest.NewRequest(http.MethodPost, "/markUnread", strings.NewReader(`{}`))
	SignRequest(testSecret, r, []byte(`{}`), time.Now())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkError(t, w, http.StatusNotFound, CodeNotFound)
}

// TestOptionalInterfacesAreIndependent: each interface switches on its own
// paths only.
func TestOptionalInterfacesAreIndependent(t *testing.T) {
	t.Parallel()
	fb := &fakeBackend{}
	type marksOnly struct {
		Backend
		ReadMarker
	}
	h := NewHandler(testSecret, marksOnly{coreOnly{fb}, fb}, HandlerOptions{Logger: quietLogger()})
	if code, body := call(t, h, PathMarkRead, `{"userId":"a","threadId":"t","messageId":"m"}`, nil); code != 200 {
		t.Fatalf("markRead: %d %s", code, body)
	}
	for _, path := range []string{PathAddParticipants, PathLeaveThread} {
		if code, body := call(t, h, path, `{"userId":"a","threadId":"t","participants":["b"]}`, nil); code != http.StatusNotImplemented ||
			!strings.Contains(body, CodeNotImplemented) {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}

	type membersOnly struct {
		Backend
		ParticipantManager
	}
	h = NewHandler(testSecret, membersOnly{coreOnly{fb}, fb}, HandlerOptions{Logger: quietLogger()})
	if code, _ := call(t, h, PathMarkRead, `{"userId":"a","threadId":"t","messageId":"m"}`, nil); code != http.StatusNotImplemented {
		t.Fatalf("markRead without ReadMarker: %d", code)
	}
	if code, body := call(t, h, PathLeaveThread, `{"userId":"a","threadId":"t"}`, nil); code != 200 {
		t.Fatalf("leaveThread: %d %s", code, body)
	}
	// A method of the same name but another signature does not count.
	h = NewHandler(testSecret, readOnlyMarks{fb}, HandlerOptions{Logger: quietLogger()})
	if code, _ := call(t, h, PathAddParticipants, `{"userId":"a","threadId":"t","participants":["b"]}`, nil); code != http.StatusNotImplemented {
		t.Fatalf("addParticipants with a look-alike method: %d", code)
	}
}

func TestOptionalValidation(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, path, body string }{
		{"markRead no user", PathMarkRead, `{"threadId":"t","messageId":"m"}`},
		{"markRead no thread", PathMarkRead, `{"userId":"a","messageId":"m"}`},
		{"markRead no message", PathMarkRead, `{"userId":"a","threadId":"t"}`},
		{"markRead empty message", PathMarkRead, `{"userId":"a","threadId":"t","messageId":""}`},
		{"markRead wrong type", PathMarkRead, `{"userId":"a","threadId":"t","messageId":7}`},
		{"add no user", PathAddParticipants, `{"threadId":"t","participants":["b"]}`},
		{"add no thread", PathAddParticipants, `{"userId":"a","participants":["b"]}`},
		{"add no participants", PathAddParticipants, `{"userId":"a","threadId":"t"}`},
		{"add empty participants", PathAddParticipants, `{"userId":"a","threadId":"t","participants":[]}`},
		{"add empty id", PathAddParticipants, `{"userId":"a","threadId":"t","participants":["b",""]}`},
		{"add not a list", PathAddParticipants, `{"userId":"a","threadId":"t","participants":"b"}`},
		{"leave no user", PathLeaveThread, `{"threadId":"t"}`},
		{"leave no thread", PathLeaveThread, `{"userId":"a"}`},
		{"leave null", PathLeaveThread, `null`},
		{"leave malformed", PathLeaveThread, `{"userId":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
			r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			SignRequest(testSecret, r, []byte(tt.body), time.Now())
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkError(t, w, http.StatusBadRequest, CodeInvalidArgument)
			if fb.calls != 0 {
				t.Fatalf("backend called with an invalid request")
			}
		})
	}
	// The signature is still checked first on an implemented optional path.
	fb := &fakeBackend{}
	h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
	r := httptest.NewRequest(http.MethodPost, PathLeaveThread, strings.NewReader(`{"userId":"a","threadId":"t"}`))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkError(t, w, http.StatusUnauthorized, CodeBadSignature)
}

// TestNotImplementedFromAMethod: a method may refuse with NotImplemented at
// run time, and a hand-built Error with the code gets the right status.
func TestNotImplementedFromAMethod(t *testing.T) {
	t.Parallel()
	for _, err := range []error{NotImplemented("leaving is not supported here"), &Error{Code: CodeNotImplemented, Message: "leaving is not supported here"}} {
		h := NewHandler(testSecret, &fakeBackend{err: err}, HandlerOptions{Logger: quietLogger()})
		r := httptest.NewRequest(http.MethodPost, PathLeaveThread, strings.NewReader(`{"userId":"a","threadId":"t"}`))
		SignRequest(testSecret, r, []byte(`{"userId":"a","threadId":"t"}`), time.Now())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkError(t, w, http.StatusNotImplemented, CodeNotImplemented)
		if !strings.Contains(w.Body.String(), "leaving is not supported here") {
			t.Fatalf("body %s", w.Body)
		}
	}
}
