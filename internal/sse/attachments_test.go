package sse

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// TestAttachmentOverREST: POST /v1/threads/{id}/uploads gives an upload
// URL, the file goes to the reference backend, the message names it and
// bob's event stream gets it with the attachment.
func TestAttachmentOverREST(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, _ := bs.ready()
		th := e.thread(alice, bob, "")
		e.listen(bob, br.StreamID, th.id, th.bobToken)
		bs.named() // the thread's creation

		file := []byte("hello, file")
		var u ops.GetUploadURLResult
		e.ok(&u, http.MethodPost, "/v1/threads/"+th.id+"/uploads", alice,
			map[string]any{"name": "note.txt", "size": len(file), "contentType": "text/plain"}, HeaderThreadToken+": "+th.aliceToken)
		req := httptest.NewRequest(u.Method, u.UploadURL, bytes.NewReader(file))
		for k, v := range u.Headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		e.st.BackendHandler().ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("upload: %d %s", rec.Code, rec.Body)
		}
		var sent ops.SendMessageResult
		e.ok(&sent, http.MethodPost, "/v1/threads/"+th.id+"/messages", alice,
			map[string]any{"body": "", "attachments": []string{u.AttachmentID}}, HeaderThreadToken+": "+th.aliceToken)
		if len(sent.Message.Attachments) != 1 || sent.Message.Attachments[0].Name != "note.txt" {
			t.Fatalf("sent %+v", sent.Message)
		}
		var pushed struct {
			Message struct {
				Attachments []struct{ ID, URL string }
			}
		}
		var found bool
		for _, ev := range bs.named() {
			if ev.name == "message" {
				ev.decode(t, &pushed)
				found = len(pushed.Message.Attachments) == 1 && pushed.Message.Attachments[0].ID == u.AttachmentID
			}
		}
		if !found {
			t.Fatalf("bob's stream has no message with the attachment")
		}
		// Over the size limit: refused before the backend.
		a := e.do(http.MethodPost, "/v1/threads/"+th.id+"/uploads", alice,
			map[string]any{"name": "big.txt", "size": 11 << 20, "contentType": "text/plain"}, HeaderThreadToken+": "+th.aliceToken)
		if a.status != http.StatusBadRequest || a.code() != apierr.InvalidArgument {
			t.Fatalf("too big: %+v", a)
		}
	})
}
