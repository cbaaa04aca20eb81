package refbackend

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// withFiles gives e a public URL (its own HTTP server), as `ecb demo` does.
func (e *env) withFiles() {
	e.tb.Helper()
	e.srv.publicURL = e.http.URL
	if err := os.MkdirAll(e.srv.filesDir, 0o700); err != nil {
		e.tb.Fatal(err)
	}
}

func (e *env) uploadURL(user, thread, name string, size int64, ct string) ecbserver.GetUploadURLResponse {
	e.tb.Helper()
	var out ecbserver.GetUploadURLResponse
	e.ok(ecbserver.PathGetUploadURL, ecbserver.GetUploadURLRequest{UserID: user, ThreadID: thread, Name: name, Size: size, ContentType: ct}, &out, callOpts{})
	return out
}

// put uploads body to the upload URL u with the headers it names.
func (e *env) put(u ecbserver.GetUploadURLResponse, body []byte) response {
	e.tb.Helper()
	req, err := http.NewRequestWithContext(e.tb.Context(), u.Method, u.UploadURL, bytes.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	for k, v := range u.Headers {
		req.Header.Set(k, v)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) response {
	e.tb.Helper()
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

func (e *env) getURL(u string) response {
	e.tb.Helper()
	req, err := http.NewRequestWithContext(e.tb.Context(), http.MethodGet, u, nil)
	if err != nil {
		e.tb.Fatal(err)
	}
	return e.do(req)
}

func TestAttachmentUploadAttachDownload(t *testing.T) {
	e := newEnv(t)
	e.withFiles()
	th := e.createThread("alice", []string{"bob"}, "files", "hi", callOpts{}).Thread.ID
	png := []byte("\x89PNG\r\n\x1a\nnot really an image")

	u := e.uploadURL("alice", th, "cat.png", int64(len(png)), "image/png")
	if u.Method != http.MethodPut || !strings.HasPrefix(u.UploadURL, e.http.URL+"/files/") || u.Headers["Content-Type"] != "image/png" {
		t.Fatalf("upload URL %+v", u)
	}
	if d := time.Until(u.ExpiresAt); d <= 0 || d > DefaultUploadTTL+time.Second {
		t.Fatalf("expiresAt %v", u.ExpiresAt)
	}
	// Not uploaded yet: not attachable.
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: th, Attachments: []string{u.AttachmentID}},
		callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
	// The wrong size or type is refused; the URL stays usable.
	if r := e.put(u, png[:3]); r.status != http.StatusBadRequest {
		t.Fatalf("short upload: %d %s", r.status, r.body)
	}
	bad := u
	bad.Headers = map[string]string{"Content-Type": "text/html"}
	if r := e.put(bad, png); r.status != http.StatusBadRequest {
		t.Fatalf("other type: %d %s", r.status, r.body)
	}
	// A tampered signature is refused.
	forged := u
	forged.UploadURL = strings.Replace(u.UploadURL, "sig=", "sig=0", 1)
	if r := e.put(forged, png); r.status != http.StatusForbidden {
		t.Fatalf("forged: %d %s", r.status, r.body)
	}
	if r := e.put(u, png); r.status != http.StatusNoContent {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := e.put(u, png); r.status != http.StatusConflict {
		t.Fatalf("second upload: %d %s", r.status, r.body)
	}

	var sent ecbserver.AddThreadMessageResponse
	e.ok(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: th, Attachments: []string{u.AttachmentID}}, &sent, callOpts{})
	if len(sent.Message.Attachments) != 1 || sent.Message.Body != "" {
		t.Fatalf("message %+v", sent.Message)
	}
	a := sent.Message.Attachments[0]
	if a.ID != u.AttachmentID || a.Name != "cat.png" || a.Size != int64(len(png)) || a.ContentType != "image/png" {
		t.Fatalf("attachment %+v", a)
	}
	r := e.getURL(a.URL)
	if r.status != http.StatusOK || !bytes.Equal(r.body, png) || r.header.Get("Content-Type") != "image/png" ||
		r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("download: %d %v %q", r.status, r.header, r.body)
	}
	// The upload URL does not download, the download URL does not upload.
	if r := e.getURL(u.UploadURL); r.status != http.StatusForbidden {
		t.Fatalf("GET with the upload URL: %d", r.status)
	}
	// Attached once only.
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: th, Body: "again", Attachments: []string{u.AttachmentID}},
		callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)

	// The history carries the attachment, with a freshly signed URL.
	hist := e.getThread("bob", th, "", 0)
	last := hist.Messages[len(hist.Messages)-1]
	if len(last.Attachments) != 1 || last.Attachments[0].ID != a.ID {
		t.Fatalf("history %+v", last)
	}
	if r := e.getURL(last.Attachments[0].URL); r.status != http.StatusOK {
		t.Fatalf("download from history: %d", r.status)
	}
	// The file is on disk under the files directory.
	if _, err := os.Stat(filepath.Join(e.srv.filesDir, a.ID)); err != nil {
		t.Fatal(err)
	}
}

func TestAttachmentRefusals(t *testing.T) {
	e := newEnv(t)
	e.withFiles()
	mine := e.createThread("alice", []string{"bob"}, "ours", "hi", callOpts{}).Thread.ID
	other := e.createThread("bob", []string{"carol"}, "theirs", "hi", callOpts{}).Thread.ID
	data := []byte("hello")

	// Only a member with the write bit gets an upload URL.
	e.fails(ecbserver.PathGetUploadURL, ecbserver.GetUploadURLRequest{UserID: "alice", ThreadID: other, Name: "a.txt", Size: 5, ContentType: "text/plain"},
		callOpts{}, http.StatusForbidden, ecbserver.CodeForbidden)
	// The backend's own size limit.
	e.fails(ecbserver.PathGetUploadURL, ecbserver.GetUploadURLRequest{UserID: "alice", ThreadID: mine, Name: "big.bin", Size: DefaultMaxUploadBytes + 1, ContentType: "text/plain"},
		callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)

	// An attachment of another thread cannot be attached (bob uploads in
	// his thread with carol, then names it in his thread with alice).
	u := e.uploadURL("bob", other, "b.txt", 5, "text/plain")
	if r := e.put(u, data); r.status != http.StatusNoContent {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: mine, Body: "look", Attachments: []string{u.AttachmentID}},
		callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
	// Nor by another user in the same thread.
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "carol", ThreadID: other, Body: "mine now", Attachments: []string{u.AttachmentID}},
		callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
	// Refused attachments leave no message behind.
	if h := e.getThread("bob", mine, "", 0); len(h.Messages) != 1 {
		t.Fatalf("messages %d", len(h.Messages))
	}

	// An upload URL is useless after its expiry.
	late := e.uploadURL("alice", mine, "late.txt", 5, "text/plain")
	e.srv.now = func() time.Time { return time.Now().Add(DefaultUploadTTL + time.Second) }
	if r := e.put(late, data); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "expired") {
		t.Fatalf("expired upload: %d %s", r.status, r.body)
	}
	e.srv.now = time.Now
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: mine, Attachments: []string{late.AttachmentID}},
		callOpts{}, http.StatusBadRequest, ecbserver.CodeInvalidArgument)
	// A download URL expires too.
	ok := e.uploadURL("alice", mine, "ok.txt", 5, "text/plain")
	if r := e.put(ok, data); r.status != http.StatusNoContent {
		t.Fatal(r.status)
	}
	var sent ecbserver.AddThreadMessageResponse
	e.ok(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: mine, Body: "file", Attachments: []string{ok.AttachmentID}}, &sent, callOpts{})
	e.srv.now = func() time.Time { return time.Now().Add(DefaultDownloadTTL + time.Second) }
	if r := e.getURL(sent.Message.Attachments[0].URL); r.status != http.StatusForbidden {
		t.Fatalf("expired download: %d", r.status)
	}
}

func TestAttachmentsNeedPublicURL(t *testing.T) {
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "hi", callOpts{}).Thread.ID
	e.fails(ecbserver.PathGetUploadURL, ecbserver.GetUploadURLRequest{UserID: "alice", ThreadID: th, Name: "a.txt", Size: 5, ContentType: "text/plain"},
		callOpts{}, http.StatusNotImplemented, ecbserver.CodeNotImplemented)
}
