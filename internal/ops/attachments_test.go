package ops_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// upload sends body to the upload URL u through the reference backend's
// handler, as a browser would.
func upload(t testing.TB, s *stacktest.Stack, u *ops.GetUploadURLResult, body []byte) int {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), u.Method, u.UploadURL, bytes.NewReader(body))
	for k, v := range u.Headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.BackendHandler().ServeHTTP(rec, req)
	return rec.Code
}

func TestAttachmentEndToEnd(t *testing.T) {
	m := newModStack(t)
	ctx := context.Background()
	aliceConn, bobConn := &inbox{}, &inbox{}
	alice, bob := m.caller(t, "alice", aliceConn), m.caller(t, "bob", bobConn)
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	th := created.Thread.ID
	bobTok := bobThreadToken(t, m, bob, th)
	if _, err := m.Ops.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok}); err != nil {
		t.Fatal(err)
	}

	img := []byte("GIF89a tiny")
	u, err := m.Ops.GetUploadURL(ctx, alice, ops.GetUploadURLRequest{ThreadToken: created.ThreadToken, Name: "dot.gif", Size: int64(len(img)), ContentType: "image/GIF"})
	if err != nil {
		t.Fatal(err)
	}
	if u.AttachmentID == "" || !strings.HasPrefix(u.UploadURL, stacktest.BackendURL+"/files/") || u.Method != http.MethodPut || u.Headers["Content-Type"] != "image/gif" {
		t.Fatalf("upload URL %+v", u)
	}
	if code := upload(t, m.Stack, u, img); code != http.StatusNoContent {
		t.Fatalf("upload: %d", code)
	}
	sent, err := m.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: created.ThreadToken, Attachments: []string{u.AttachmentID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent.Message.Attachments) != 1 || sent.Message.Attachments[0].Name != "dot.gif" || sent.Message.Attachments[0].URL == "" {
		t.Fatalf("sent %+v", sent.Message)
	}
	// Bob gets it pushed with the attachment.
	push := lastPush(t, bobConn, ops.EventMessage)
	atts, _ := push["message"].(map[string]any)["attachments"].([]any)
	if len(atts) != 1 || atts[0].(map[string]any)["id"] != u.AttachmentID || atts[0].(map[string]any)["contentType"] != "image/gif" {
		t.Fatalf("push %v", push)
	}
	// And in the history, downloadable.
	hist, err := m.Ops.GetThread(ctx, bob, ops.GetThreadRequest{ThreadToken: bobTok})
	if err != nil {
		t.Fatal(err)
	}
	last := hist.Messages[len(hist.Messages)-1]
	if len(last.Attachments) != 1 {
		t.Fatalf("history %+v", last)
	}
	rec := httptest.NewRecorder()
	m.BackendHandler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, last.Attachments[0].URL, nil))
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), img) {
		t.Fatalf("download %d %q", rec.Code, rec.Body)
	}
}

// bobThreadToken finds bob's threadToken of th in his thread list.
func bobThreadToken(t *testing.T, m *modStack, bob ops.Caller, th string) string {
	t.Helper()
	page, err := m.Ops.GetThreads(context.Background(), bob, ops.GetThreadsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if it.Thread.ID == th {
			return it.ThreadToken
		}
	}
	t.Fatalf("bob has no thread %s", th)
	return ""
}

// TestAttachmentLimits: ECB refuses, before the backend is asked, what its
// configuration does not allow; the reference backend would have accepted
// each of these (its own limit is 10 MiB, any type).
func TestAttachmentLimits(t *testing.T) {
	s := stacktest.New(t, stacktest.Options{Ops: ops.Config{MaxAttachmentBytes: 1000, AttachmentTypes: []string{"image/*"}, MaxAttachments: 2}})
	ctx := context.Background()
	u, err := s.Ops.Authenticate(s.UserToken("alice"), "")
	if err != nil {
		t.Fatal(err)
	}
	alice := ops.Caller{User: u, Conn: &inbox{}}
	s.Hub.Register(alice.Conn, "alice")
	created, err := s.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := created.ThreadToken
	for _, c := range []struct {
		req  ops.GetUploadURLRequest
		want string
	}{
		{ops.GetUploadURLRequest{Name: "big.png", Size: 1001, ContentType: "image/png"}, "exceeds the attachment limit of 1000"},
		{ops.GetUploadURLRequest{Name: "page.html", Size: 10, ContentType: "text/html"}, "not accepted"},
		{ops.GetUploadURLRequest{Name: "x.png", Size: 10, ContentType: "not a type"}, "media type"},
		{ops.GetUploadURLRequest{Name: "../etc/passwd", Size: 10, ContentType: "image/png"}, "without path"},
		{ops.GetUploadURLRequest{Name: "", Size: 10, ContentType: "image/png"}, "name is required"},
		{ops.GetUploadURLRequest{Name: "e.png", Size: 0, ContentType: "image/png"}, "at least 1"},
		{ops.GetUploadURLRequest{Name: strings.Repeat("n", 256), Size: 1, ContentType: "image/png"}, "exceeds 255"},
	} {
		c.req.ThreadToken = tok
		_, err := s.Ops.GetUploadURL(ctx, alice, c.req)
		if codeOf(err) != apierr.InvalidArgument || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want invalid_argument %q", c.req, err, c.want)
		}
	}
	if _, err := s.Ops.GetUploadURL(ctx, alice, ops.GetUploadURLRequest{ThreadToken: tok, Name: "ok.png", Size: 1000, ContentType: "image/png; charset=x"}); err != nil {
		t.Fatalf("within the limits: %v", err)
	}
	for _, ids := range [][]string{{"a", "b", "c"}, {"a", "a"}, {""}, {strings.Repeat("i", 129)}} {
		_, err := s.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: tok, MessageInput: ops.MessageInput{Body: "x"}, Attachments: ids})
		if codeOf(err) != apierr.InvalidArgument {
			t.Errorf("attachments %q: %v", ids, err)
		}
	}
	// Unknown ids get the backend's refusal.
	if _, err := s.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: tok, Attachments: []string{"att_nope"}}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("unknown attachment: %v", err)
	}
	// Without attachments the body is still required.
	if _, err := s.Ops.SendMessage(ctx, alice, ops.SendMessageRequest{ThreadToken: tok}); codeOf(err) != apierr.InvalidArgument {
		t.Fatalf("empty message: %v", err)
	}
}

// FuzzAttachmentCall decodes and runs getUploadUrl and sendMessage with
// attachments on the reference backend ("$TOK" is a threadToken of the
// caller): every error is one of the closed list of codes.
func FuzzAttachmentCall(f *testing.F) {
	for _, seed := range []struct{ op, payload string }{
		{"getUploadUrl", `{"threadToken":"$TOK","name":"a.png","size":10,"contentType":"image/png"}`},
		{"getUploadUrl", `{"threadToken":"$TOK","name":"a.png","size":-1,"contentType":"image/png"}`},
		{"getUploadUrl", `{"threadToken":"$TOK","name":"a.png","size":1e30,"contentType":"image/png"}`},
		{"getUploadUrl", `{"threadToken":"$TOK","name":"a\u0000.png","size":1,"contentType":"image/png"}`},
		{"getUploadUrl", `{"threadToken":"$TOK","name":"a","size":1,"contentType":"image/png; q=\""}`},
		{"getUploadUrl", `{"threadToken":"$TOK","name":7,"size":"1"}`},
		{"getUploadUrl", `{"threadToken":"","name":"a","size":1,"contentType":"text/plain"}`},
		{"sendMessage", `{"threadToken":"$TOK","attachments":["att_00000000000000000000000000000000"]}`},
		{"sendMessage", `{"threadToken":"$TOK","body":"x","attachments":[1,2]}`},
		{"sendMessage", `{"threadToken":"$TOK","body":"x","attachments":"att"}`},
		{"sendMessage", `{"threadToken":"$TOK","attachments":[]}`},
	} {
		f.Add(seed.op, []byte(seed.payload))
	}
	m := newModStackTB(f)
	ctx := context.Background()
	alice := m.callerTB(f, "alice", &inbox{})
	created, err := m.Ops.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob"}, Message: ops.MessageInput{Body: "a1"}})
	if err != nil {
		f.Fatal(err)
	}
	tok := created.ThreadToken
	f.Fuzz(func(t *testing.T, op string, payload []byte) {
		if op != ops.OpGetUploadURL && op != ops.OpSendMessage {
			return
		}
		p := []byte(strings.ReplaceAll(string(payload), "$TOK", tok))
		_, err := m.Ops.Call(ctx, alice, op, p)
		if err != nil && !slices.Contains(apierr.Codes, apierr.From(err).Code) {
			t.Fatalf("code %q is not in the closed list", apierr.From(err).Code)
		}
	})
}
