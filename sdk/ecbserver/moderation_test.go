package ecbserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// modBackend implements the core and the 1.4 interfaces on top of the fake.
type modBackend struct{ *fakeBackend }

func (m modBackend) JoinThread(ctx context.Context, req *JoinThreadRequest) (*JoinThreadResponse, error) {
	if err := m.record(ctx, req); err != nil {
		return nil, err
	}
	return &JoinThreadResponse{Thread: Thread{ID: req.ThreadID, Public: true, CreatedAt: fixedTime, UpdatedAt: fixedTime}, ThreadToken: "tt", Joined: true}, nil
}

func (m modBackend) GetPublicThreads(ctx context.Context, req *GetPublicThreadsRequest) (*GetPublicThreadsResponse, error) {
	if err := m.record(ctx, req); err != nil {
		return nil, err
	}
	return &GetPublicThreadsResponse{}, nil // nil list on purpose: must encode as []
}

func (m modBackend) RemoveParticipant(ctx context.Context, req *RemoveParticipantRequest) (*RemoveParticipantResponse, error) {
	if err := m.record(ctx, req); err != nil {
		return nil, err
	}
	return &RemoveParticipantResponse{Thread: Thread{ID: req.ThreadID, CreatedAt: fixedTime, UpdatedAt: fixedTime}}, nil
}

func (m modBackend) UpdateThread(ctx context.Context, req *UpdateThreadRequest) (*UpdateThreadResponse, error) {
	if err := m.record(ctx, req); err != nil {
		return nil, err
	}
	return &UpdateThreadResponse{Thread: Thread{ID: req.ThreadID, Subject: *req.Subject, CreatedAt: fixedTime, UpdatedAt: fixedTime}}, nil
}

func (m modBackend) DeleteMessage(ctx context.Context, req *DeleteMessageRequest) (*DeleteMessageResponse, error) {
	if err := m.record(ctx, req); err != nil {
		return nil, err
	}
	return &DeleteMessageResponse{Message: Message{ID: req.MessageID, ThreadID: req.ThreadID, AuthorID: "bob", Deleted: true, CreatedAt: fixedTime}}, nil
}

func (m modBackend) DeleteThread(ctx context.Context, req *DeleteThreadRequest) (*DeleteThreadResponse, error) {
	if err := m.record(ctx, req); err != nil {
		return nil, err
	}
	return &DeleteThreadResponse{Thread: Thread{ID: req.ThreadID, Members: []string{req.UserID}, CreatedAt: fixedTime, UpdatedAt: fixedTime}}, nil
}

var (
	_ PublicThreads = modBackend{}
	_ Moderator     = modBackend{}
)

func TestModerationDispatch(t *testing.T) {
	t.Parallel()
	const ts = `"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"`
	tests := []struct{ path, body, want string }{
		{PathJoinThread, `{"userId":"alice","threadId":"t1"}`,
			`{"thread":{"id":"t1","members":[],` + ts + `,"public":true},"threadToken":"tt","joined":true}`},
		{PathGetPublicThreads, `{"userId":"alice"}`, `{"threads":[]}`},
		{PathRemoveParticipant, `{"userId":"alice","threadId":"t1","participantId":"bob"}`,
			`{"thread":{"id":"t1","members":[],` + ts + `}}`},
		{PathUpdateThread, `{"userId":"alice","threadId":"t1","subject":"New"}`,
			`{"thread":{"id":"t1","subject":"New","members":[],` + ts + `}}`},
		{PathDeleteMessage, `{"userId":"alice","threadId":"t1","messageId":"m1"}`,
			`{"message":{"id":"m1","threadId":"t1","authorId":"bob","body":"","createdAt":"2026-01-02T03:04:05Z","deleted":true}}`},
		{PathDeleteThread, `{"userId":"alice","threadId":"t1"}`,
			`{"thread":{"id":"t1","members":["alice"],` + ts + `}}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, modBackend{fb}, HandlerOptions{Logger: quietLogger()})
			code, body := call(t, h, tt.path, tt.body, nil)
			if code != http.StatusOK || body != tt.want {
				t.Fatalf("got %d %s\nwant 200 %s", code, body, tt.want)
			}
			if fb.calls != 1 {
				t.Fatalf("backend calls %d", fb.calls)
			}
		})
	}
}

func TestModerationNotImplemented(t *testing.T) {
	t.Parallel()
	fb := &fakeBackend{}
	h := NewHandler(testSecret, coreOnly{fb}, HandlerOptions{Logger: quietLogger()})
	for _, path := range []string{PathJoinThread, PathGetPublicThreads, PathRemoveParticipant, PathUpdateThread, PathDeleteMessage, PathDeleteThread} {
		body := `{"userId":"a","threadId":"t","participantId":"b","messageId":"m","subject":"s"}`
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		SignRequest(testSecret, r, []byte(body), time.Now())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkError(t, w, http.StatusNotImplemented, CodeNotImplemented)
		if !strings.Contains(w.Body.String(), "does not implement "+strings.TrimPrefix(path, "/")) {
			t.Errorf("%s: message %s", path, w.Body)
		}
	}
	if fb.calls != 0 {
		t.Fatalf("backend called %d times", fb.calls)
	}
}

func TestModerationValidation(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, path, body string }{
		{"join no user", PathJoinThread, `{"threadId":"t"}`},
		{"join no thread", PathJoinThread, `{"userId":"a"}`},
		{"public no user", PathGetPublicThreads, `{}`},
		{"remove no participant", PathRemoveParticipant, `{"userId":"a","threadId":"t"}`},
		{"remove no thread", PathRemoveParticipant, `{"userId":"a","participantId":"b"}`},
		{"update nothing", PathUpdateThread, `{"userId":"a","threadId":"t"}`},
		{"update data not object", PathUpdateThread, `{"userId":"a","threadId":"t","data":[1]}`},
		{"delete message no id", PathDeleteMessage, `{"userId":"a","threadId":"t"}`},
		{"delete thread no thread", PathDeleteThread, `{"userId":"a"}`},
		{"delete thread malformed", PathDeleteThread, `{"userId":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, modBackend{fb}, HandlerOptions{Logger: quietLogger()})
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
}
