package server

import (
	"net/http/httptest"
	"testing"
)

// TestOriginPolicy: an allowed origin and the page's own pass, compared as
// serialized origins; a URL ("http://host:port/"), userinfo, another port
// or scheme, or a Unicode look-alike is neither.
func TestOriginPolicy(t *testing.T) {
	listed := newOriginPolicy([]string{"https://app.example", "https://pasted.example/"})
	cases := []struct {
		origin string
		want   bool
	}{
		{"", true},
		{"https://app.example", true},
		{"HTTPS://APP.example", true},
		{"https://pasted.example", true},  // the config entry's trailing "/" is not part of the origin
		{"http://ecb.example:8080", true}, // same host as the request
		{"https://ecb.example:8080", true},

		{"https://app.example/", false},
		{"https://pasted.example/", false},
		{"http://ecb.example:8080/", false},
		{"http://ecb.example:8080/socket.io/", false},
		{"http://x@ecb.example:8080", false},
		{"http://ecb.example:8081", false},
		{"https://app.example:443", false},
		{"http://app.example", false},
		{"https://\u212aapp.example", false},
		{"null", false},
		{"ecb.example:8080", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "http://ecb.example:8080/v1/contacts", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if got := listed.allows(r); got != c.want {
			t.Errorf("allows(Origin %q) = %v, want %v", c.origin, got, c.want)
		}
	}
	r := httptest.NewRequest("GET", "http://ecb.example:8080/v1/contacts", nil)
	r.Header.Set("Origin", "https://elsewhere.example/")
	if !newOriginPolicy([]string{"*"}).allows(r) {
		t.Error(`"*" refused an origin`)
	}
}
