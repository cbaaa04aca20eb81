package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ecbridge/ecb/web"
)

// Paths that name no file answer 404, those that are not UTF-8 (GET /%c0)
// included, never 500.
func TestHandlerStatuses(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", http.StatusOK},
		{"/index.html", http.StatusMovedPermanently}, // FileServer's canonical "/"
		{"/no-such-file.js", http.StatusNotFound},
		{"/%c0", http.StatusNotFound},
		{"/%ff/x", http.StatusNotFound},
		{"/a%c0b.js", http.StatusNotFound},
		{"/assets/%e2%82", http.StatusNotFound}, // a truncated UTF-8 sequence
		{"/%00", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://ecb.test"+tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, rec.Code, tc.want)
		}
	}
}

func FuzzHandlerNever500(f *testing.F) {
	for _, p := range []string{"", "index.html", "%c0", "%ff/x", "assets/%e2%82", "..%2f", "%00"} {
		f.Add(p)
	}
	h := web.Handler()
	f.Fuzz(func(t *testing.T, path string) {
		req, err := http.NewRequest(http.MethodGet, "http://ecb.test/"+path, nil)
		if err != nil {
			return // not a URL a client could send
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET /%s: %d", path, rec.Code)
		}
	})
}
