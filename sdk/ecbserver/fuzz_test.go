package ecbserver

import (
	"crypto/hmac"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyRequest checks that no header value panics the verifier and that
// it accepts only the exact signature of a fresh timestamp.
func FuzzVerifyRequest(f *testing.F) {
	now := vectorTime
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add(ts, vectorSig, []byte(vectorBody))
	f.Add(ts, vectorSig, []byte(`{"accessToken":"abd"}`))
	f.Add(ts, "v1=", []byte(""))
	f.Add("", "", []byte(""))
	f.Add("-1", "v1="+strings.Repeat("0", 64), []byte("{}"))
	f.Add("9223372036854775807", "v1="+strings.Repeat("f", 64), []byte("{}"))
	f.Add("1e9", "V1="+strings.Repeat("A", 64), []byte(nil))
	f.Add(ts, "v1="+strings.Repeat("0", 63), []byte("x"))

	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header[HeaderTimestamp] = []string{ts}
		r.Header[HeaderSignature] = []string{sig}
		err := VerifyRequest(testSecret, r, body, now, 0)
		if err != nil {
			return
		}
		want := "v1=" + hexMAC(testSecret, ts, body)
		if !hmac.Equal([]byte(sig), []byte(want)) {
			t.Fatalf("accepted signature %q for ts %q, want %q", sig, ts, want)
		}
		unix, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || unix < now.Unix()-300 || unix > now.Unix()+300 {
			t.Fatalf("accepted timestamp %q", ts)
		}
	})
}

// FuzzHandlerDecode sends correctly signed arbitrary bodies to every path,
// the optional ones included (the fake implements them): the handler must
// answer 200 or a 4xx with the error body, never panic and never answer 5xx
// (the fake backend never fails).
func FuzzHandlerDecode(f *testing.F) {
	seeds := []struct{ path, body string }{
		{PathAuthenticate, `{"accessToken":"abc"}`},
		{PathGetContacts, `{"userId":"alice"}`},
		{PathGetThreads, `{"userId":"alice","extra":[1,2,3]}`},
		{PathCreateThread, `{"userId":"alice","participants":["bob"],"subject":"s","message":{"body":"hi","data":{"k":1}}}`},
		{PathGetThread, `{"userId":"alice","threadId":"t1","before":"abc","limit":50}`},
		{PathAddThreadMessage, `{"userId":"alice","threadId":"t1","body":"yo","clientMessageId":"c1"}`},
		{PathGetContacts, `{"userId":`},
		{PathGetThread, `{"userId":"a","threadId":"t","limit":1e400}`},
		{PathCreateThread, `{"participants":null,"message":null}`},
		{PathAddThreadMessage, `{"userId":"a","threadId":"t","body":"x","data":}`},
		{PathMarkRead, `{"userId":"alice","threadId":"t1","messageId":"m1"}`},
		{PathMarkRead, `{"userId":"alice","threadId":"t1","messageId":null}`},
		{PathAddParticipants, `{"userId":"alice","threadId":"t1","participants":["bob","carol"]}`},
		{PathAddParticipants, `{"userId":"alice","threadId":"t1","participants":[""]}`},
		{PathAddParticipants, `{"userId":"alice","threadId":"t1","participants":[1]}`},
		{PathLeaveThread, `{"userId":"bob","threadId":"t1"}`},
		{PathLeaveThread, `{"userId":"bob","threadId":{}}`},
		{PathSearchUsers, `{"userId":"alice","query":"bo"}`},
		{PathSearchUsers, `{"userId":"alice","query":7}`},
		{PathAddContact, `{"userId":"alice","contactId":"dave"}`},
		{PathRemoveContact, `{"userId":"alice","contactId":["dave"]}`},
		{PathSetProfile, `{"userId":"alice","properties":{"title":"CTO","a.b":""}}`},
		{PathSetProfile, `{"userId":"alice","properties":{"":"x"}}`},
		{PathDeleteProfileProperty, `{"userId":"alice","name":"title"}`},
		{PathDeleteProfileProperty, `{"userId":"alice","name":"\u0000"}`},
		{PathGetUploadURL, `{"userId":"alice","threadId":"t1","name":"a.png","size":10,"contentType":"image/png"}`},
		{PathGetUploadURL, `{"userId":"alice","threadId":"t1","name":"a.png","size":-1e30,"contentType":7}`},
		{PathAddThreadMessage, `{"userId":"alice","threadId":"t1","body":"","attachments":["att_1",""]}`},
		{PathAddThreadMessage, `{"userId":"alice","threadId":"t1","body":"hi @bob","mentions":["bob",""]}`},
		{PathAddThreadMessage, `{"userId":"alice","threadId":"t1","body":"hi","mentions":[1]}`},
		{"/unknown", `{}`},
		{PathAuthenticate, "\xff\xfe"},
	}
	for _, s := range seeds {
		f.Add(s.path, []byte(s.body))
	}
	h := NewHandler(testSecret, &fakeBackend{}, HandlerOptions{Logger: quietLogger(), MaxBodyBytes: 4096})

	f.Fuzz(func(t *testing.T, path string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "http://backend/", strings.NewReader(string(body)))
		r.URL.Path = path // any string, as a proxy could hand it over
		SignRequest(testSecret, r, body, time.Now())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", path, body, w.Code, w.Body)
		}
		if w.Code == 200 {
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("invalid JSON answer %q", w.Body)
			}
			return
		}
		var er ErrorResponse
		if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil || er.Error.Code == "" || er.Error.Message == "" {
			t.Fatalf("%s %q: status %d with body %q", path, body, w.Code, w.Body)
		}
	})
}
