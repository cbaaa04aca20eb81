package ecbserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend is the SDK's unit-test seam: it records what the handler passed
// in and answers with fixed data, or with err when set.
type fakeBackend struct {
	mu       sync.Mutex
	err      error
	nilResp  bool
	calls    int
	lastKey  string
	lastReqI string
	lastReq  any
}

func (f *fakeBackend) record(ctx context.Context, req any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.lastKey = IdempotencyKey(ctx)
	f.lastReqI = RequestID(ctx)
	f.lastReq = req
	return f.err
}

var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeBackend) Authenticate(ctx context.Context, req *AuthenticateRequest) (*AuthenticateResponse, error) {
	if err := f.record(ctx, req); err != nil || f.nilResp {
		return nil, err
	}
	return &AuthenticateResponse{UserToken: "ut-" + req.AccessToken, User: User{ID: "alice", Name: "Alice"}}, nil
}

func (f *fakeBackend) GetContacts(ctx context.Context, req *GetContactsRequest) (*GetContactsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &GetContactsResponse{}, nil // nil slice on purpose: must encode as []
}

func (f *fakeBackend) GetThreads(ctx context.Context, req *GetThreadsRequest) (*GetThreadsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &GetThreadsResponse{Threads: []SignedThread{{Thread: Thread{ID: "t1", CreatedAt: fixedTime, UpdatedAt: fixedTime}, ThreadToken: "tt"}}}, nil
}

func (f *fakeBackend) CreateThread(ctx context.Context, req *CreateThreadRequest) (*CreateThreadResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &CreateThreadResponse{
		Thread:      Thread{ID: "t1", Members: append([]string{req.UserID}, req.Participants...), CreatedAt: fixedTime, UpdatedAt: fixedTime},
		ThreadToken: "tt",
		Message:     Message{ID: "m1", ThreadID: "t1", AuthorID: req.UserID, Body: req.Message.Body, CreatedAt: fixedTime},
	}, nil
}

func (f *fakeBackend) GetThread(ctx context.Context, req *GetThreadRequest) (*GetThreadResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &GetThreadResponse{Thread: Thread{ID: req.ThreadID, CreatedAt: fixedTime, UpdatedAt: fixedTime}, ThreadToken: "tt"}, nil
}

func (f *fakeBackend) AddThreadMessage(ctx context.Context, req *AddThreadMessageRequest) (*AddThreadMessageResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &AddThreadMessageResponse{
		Message:     Message{ID: "m2", ThreadID: req.ThreadID, AuthorID: req.UserID, Body: req.Body, ClientMessageID: req.ClientMessageID, CreatedAt: fixedTime},
		ThreadToken: "tt",
	}, nil
}

var _ Backend = (*fakeBackend)(nil)

// call sends a signed POST to h and returns the status and body.
func call(tb testing.TB, h http.Handler, path, body string, hdr map[string]string) (int, string) {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	SignRequest(testSecret, r, []byte(body), time.Now())
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestHandlerDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, body string
		want       string
	}{
		{PathAuthenticate, `{"accessToken":"abc"}`,
			`{"userToken":"ut-abc","user":{"id":"alice","name":"Alice"}}`},
		{PathGetContacts, `{"userId":"alice"}`, `{"contacts":[]}`},
		{PathGetThreads, `{"userId":"alice"}`,
			`{"threads":[{"thread":{"id":"t1","members":[],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"threadToken":"tt"}]}`},
		{PathCreateThread, `{"userId":"alice","participants":["bob"],"message":{"body":"hi"}}`,
			`{"thread":{"id":"t1","members":["alice","bob"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"threadToken":"tt","message":{"id":"m1","threadId":"t1","authorId":"alice","body":"hi","createdAt":"2026-01-02T03:04:05Z"}}`},
		{PathGetThread, `{"userId":"alice","threadId":"t9","limit":10}`,
			`{"thread":{"id":"t9","members":[],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"threadToken":"tt","messages":[]}`},
		{PathAddThreadMessage, `{"userId":"alice","threadId":"t1","body":"yo","clientMessageId":"c1","someFutureField":true}`,
			`{"message":{"id":"m2","threadId":"t1","authorId":"alice","body":"yo","clientMessageId":"c1","createdAt":"2026-01-02T03:04:05Z"},"threadToken":"tt"}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
			code, body := call(t, h, tt.path, tt.body, map[string]string{
				HeaderIdempotencyKey: "key-1", HeaderRequestID: "req-1", HeaderContractVersion: ContractVersion,
			})
			if code != http.StatusOK || body != tt.want {
				t.Fatalf("got %d %s\nwant 200 %s", code, body, tt.want)
			}
			if fb.calls != 1 || fb.lastKey != "key-1" || fb.lastReqI != "req-1" {
				t.Fatalf("backend saw calls=%d key=%q requestID=%q", fb.calls, fb.lastKey, fb.lastReqI)
			}
		})
	}
}

func TestHandlerDecodesRequest(t *testing.T) {
	t.Parallel()
	fb := &fakeBackend{}
	h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
	code, _ := call(t, h, PathGetThread, `{"userId":"u","threadId":"t","before":"c","limit":7}`, nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	got := fb.lastReq.(*GetThreadRequest)
	if *got != (GetThreadRequest{UserID: "u", ThreadID: "t", Before: "c", Limit: 7}) {
		t.Fatalf("decoded %+v", got)
	}
	if fb.lastKey != "" {
		t.Fatalf("idempotency key %q without header", fb.lastKey)
	}
}

func TestHandlerRefusesBeforeCallingBackend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		sign     bool
		signAt   time.Time
		header   map[string]string
		wantCode int
		wantErr  string
	}{
		{name: "unknown path", method: "POST", path: "/nope", body: `{}`, sign: true, wantCode: 404, wantErr: CodeNotFound},
		{name: "GET", method: "GET", path: PathGetContacts, sign: true, wantCode: 405, wantErr: CodeInvalidArgument},
		{name: "unsigned", method: "POST", path: PathGetContacts, body: `{"userId":"a"}`, wantCode: 401, wantErr: CodeBadSignature},
		{name: "stale", method: "POST", path: PathGetContacts, body: `{"userId":"a"}`, sign: true,
			signAt: time.Now().Add(-10 * time.Minute), wantCode: 401, wantErr: CodeBadSignature},
		{name: "malformed JSON", method: "POST", path: PathGetContacts, body: `{"userId":`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "trailing garbage", method: "POST", path: PathGetContacts, body: `{"userId":"a"} x`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "array body", method: "POST", path: PathGetContacts, body: `[]`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "empty body", method: "POST", path: PathGetContacts, body: ``, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "wrong type", method: "POST", path: PathGetThread, body: `{"userId":"a","threadId":"t","limit":"ten"}`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "missing userId", method: "POST", path: PathGetContacts, body: `{}`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "null body", method: "POST", path: PathAuthenticate, body: `null`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "no participants", method: "POST", path: PathCreateThread, body: `{"userId":"a","participants":[],"message":{"body":"x"}}`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "empty first message", method: "POST", path: PathCreateThread, body: `{"userId":"a","participants":["b"],"message":{"body":""}}`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "negative limit", method: "POST", path: PathGetThread, body: `{"userId":"a","threadId":"t","limit":-1}`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "no threadId", method: "POST", path: PathAddThreadMessage, body: `{"userId":"a","body":"x"}`, sign: true, wantCode: 400, wantErr: CodeInvalidArgument},
		{name: "future contract", method: "POST", path: PathGetContacts, body: `{"userId":"a"}`, sign: true,
			header: map[string]string{HeaderContractVersion: "2"}, wantCode: 400, wantErr: CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.sign {
				at := tt.signAt
				if at.IsZero() {
					at = time.Now()
				}
				SignRequest(testSecret, r, []byte(tt.body), at)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkError(t, w, tt.wantCode, tt.wantErr)
			if fb.calls != 0 {
				t.Fatalf("backend was called %d times", fb.calls)
			}
			if tt.wantCode == 405 && w.Header().Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", w.Header().Get("Allow"))
			}
		})
	}
}

func checkError(tb testing.TB, w *httptest.ResponseRecorder, wantCode int, wantErr string) {
	tb.Helper()
	if w.Code != wantCode {
		tb.Fatalf("status %d, want %d; body %s", w.Code, wantCode, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type %q", ct)
	}
	var er ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&er); err != nil {
		tb.Fatalf("error body %q: %v", w.Body, err)
	}
	if er.Error.Code != wantErr || er.Error.Message == "" {
		tb.Fatalf("error %+v, want code %s and a message", er.Error, wantErr)
	}
}

func TestHandlerErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		nilResp  bool
		wantCode int
		wantErr  string
		wantMsg  string
	}{
		{name: "not found", err: NotFound("no thread t1"), wantCode: 404, wantErr: CodeNotFound, wantMsg: "no thread t1"},
		{name: "forbidden", err: Forbidden("not a member"), wantCode: 403, wantErr: CodeForbidden, wantMsg: "not a member"},
		{name: "invalid", err: InvalidArgument("bad"), wantCode: 400, wantErr: CodeInvalidArgument, wantMsg: "bad"},
		{name: "unauthenticated", err: Unauthenticated("expired"), wantCode: 401, wantErr: CodeUnauthenticated, wantMsg: "expired"},
		{name: "conflict", err: Conflict("reused key"), wantCode: 409, wantErr: CodeConflict, wantMsg: "reused key"},
		{name: "wrapped", err: fmt.Errorf("load thread: %w", NotFound("gone")), wantCode: 404, wantErr: CodeNotFound, wantMsg: "gone"},
		{name: "code only", err: &Error{Code: CodeForbidden}, wantCode: 403, wantErr: CodeForbidden, wantMsg: "Forbidden"},
		{name: "empty error", err: &Error{}, wantCode: 500, wantErr: CodeInternal, wantMsg: "Internal Server Error"},
		{name: "plain error", err: errors.New("database is locked: secret detail"), wantCode: 500, wantErr: CodeInternal, wantMsg: "internal error"},
		{name: "nil response", nilResp: true, wantCode: 500, wantErr: CodeInternal, wantMsg: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			fb := &fakeBackend{err: tt.err, nilResp: tt.nilResp}
			h := NewHandler(testSecret, fb, HandlerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			r := httptest.NewRequest(http.MethodPost, PathAuthenticate, strings.NewReader(`{"accessToken":"x"}`))
			SignRequest(testSecret, r, []byte(`{"accessToken":"x"}`), time.Now())
			r.Header.Set(HeaderRequestID, "req-42")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkError(t, w, tt.wantCode, tt.wantErr)
			if !strings.Contains(w.Body.String(), tt.wantMsg) {
				t.Fatalf("body %s lacks %q", w.Body, tt.wantMsg)
			}
			if strings.Contains(w.Body.String(), "secret detail") {
				t.Fatalf("internal detail leaked: %s", w.Body)
			}
			if tt.wantMsg == "internal error" && !strings.Contains(logs.String(), "req-42") {
				t.Fatalf("internal error not logged with the request id: %s", logs.String())
			}
		})
	}
}

func TestHandlerBodyLimit(t *testing.T) {
	t.Parallel()
	fb := &fakeBackend{}
	h := NewHandler(testSecret, fb, HandlerOptions{MaxBodyBytes: 64, Logger: quietLogger()})

	small := `{"accessToken":"` + strings.Repeat("a", 30) + `"}`
	if code, body := call(t, h, PathAuthenticate, small, nil); code != 200 {
		t.Fatalf("small body: %d %s", code, body)
	}
	big := `{"accessToken":"` + strings.Repeat("a", 100) + `"}`
	r := httptest.NewRequest(http.MethodPost, PathAuthenticate, strings.NewReader(big))
	SignRequest(testSecret, r, []byte(big), time.Now())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkError(t, w, http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
	if fb.calls != 1 {
		t.Fatalf("backend calls = %d, want 1", fb.calls)
	}
}

func TestHandlerDefaultBodyLimit(t *testing.T) {
	t.Parallel()
	h := NewHandler(testSecret, &fakeBackend{}, HandlerOptions{Logger: quietLogger()})
	big := `{"accessToken":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`
	r := httptest.NewRequest(http.MethodPost, PathAuthenticate, strings.NewReader(big))
	SignRequest(testSecret, r, []byte(big), time.Now())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkError(t, w, http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
}

func TestHandlerEmptySecretRefusesAll(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	fb := &fakeBackend{}
	h := NewHandler(nil, fb, HandlerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "empty secret") {
		t.Fatalf("no warning logged for an empty secret: %q", logs.String())
	}
	r := httptest.NewRequest(http.MethodPost, PathGetContacts, strings.NewReader(`{"userId":"a"}`))
	SignRequest(nil, r, []byte(`{"userId":"a"}`), time.Now())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkError(t, w, http.StatusUnauthorized, CodeBadSignature)
	if fb.calls != 0 {
		t.Fatal("backend called with an empty secret")
	}
}

// TestHandlerOverHTTP runs the handler behind a real server and StripPrefix,
// the way a backend mounts it.
func TestHandlerOverHTTP(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/ecb/v1/", http.StripPrefix("/ecb/v1", NewHandler(testSecret, &fakeBackend{}, HandlerOptions{Logger: quietLogger()})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	body := []byte(`{"accessToken":"abc"}`)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/ecb/v1"+PathAuthenticate, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	SignRequest(testSecret, req, body, time.Now())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out AuthenticateResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || out.UserToken != "ut-abc" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("got %d %+v %v", resp.StatusCode, out, resp.Header)
	}
}
