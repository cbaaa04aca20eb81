package reqid_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/reqid"
)

func TestMiddlewareAndLogHandler(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(reqid.Handler(slog.NewTextHandler(&logs, nil)))
	h := reqid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "handled")
	}))
	cases := []struct{ in, want string }{
		{"abc-123", "abc-123"},
		{"evil\nline", ""}, // not sane: replaced by a random one
		{"", ""},
	}
	for _, tc := range cases {
		logs.Reset()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.in != "" {
			req.Header.Set(reqid.Header, tc.in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(reqid.Header)
		if tc.want != "" && got != tc.want || got == "" || strings.ContainsAny(got, "\n\r ") {
			t.Errorf("in %q: response id %q", tc.in, got)
		}
		if !strings.Contains(logs.String(), "request_id="+got) {
			t.Errorf("in %q: log %q lacks request_id=%s", tc.in, logs.String(), got)
		}
	}
}
