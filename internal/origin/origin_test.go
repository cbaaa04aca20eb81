package origin

import (
	"net/url"
	"strings"
	"testing"
)

var parseCases = []struct {
	in           string
	scheme, host string
	ok           bool
}{
	{"https://app.example", "https", "app.example", true},
	{"http://127.0.0.1:8080", "http", "127.0.0.1:8080", true},
	{"HTTP://App.Example:443", "HTTP", "App.Example:443", true},
	{"http://[::1]:3000", "http", "[::1]:3000", true},
	{"http://[::1]", "http", "[::1]", true},
	{"chrome-extension://abcdef", "chrome-extension", "abcdef", true},
	{"http://xn--bcher-kva.example", "http", "xn--bcher-kva.example", true},

	{"http://127.0.0.1:8080/", "", "", false}, // a URL, not an origin
	{"https://app.example/", "", "", false},
	{"https://app.example/path", "", "", false},
	{"https://app.example?q", "", "", false},
	{"https://app.example#f", "", "", false},
	{"https://user@app.example", "", "", false},
	{"https://app.example:", "", "", false},
	{"https://app.example:8x", "", "", false},
	{"https://app.example:123456", "", "", false},
	{"https://:443", "", "", false},
	{"https://", "", "", false},
	{"://app.example", "", "", false},
	{"1http://app.example", "", "", false},
	{"app.example", "", "", false},
	{"null", "", "", false},
	{"", "", "", false},
	{"https://\u212aevil.example", "", "", false}, // KELVIN SIGN
	{"https://app.example ", "", "", false},
	{"https://app.example\\", "", "", false},
	{"http://[::1", "", "", false},
	{"http://[]", "", "", false},
	{"http://[::1]x", "", "", false},
	{"http://[::1]:", "", "", false},
	{"http://[g::1]", "", "", false},
}

func TestParse(t *testing.T) {
	for _, c := range parseCases {
		scheme, host, ok := Parse(c.in)
		if ok != c.ok || scheme != c.scheme || host != c.host {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, %v", c.in, scheme, host, ok, c.scheme, c.host, c.ok)
		}
	}
}

func TestEqualInSameHost(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"https://app.example", "https://app.example", true},
		{"https://APP.example", "https://app.EXAMPLE", true},
		{"https://app.example/", "https://app.example", false},
		{"https://app.example", "https://app.example/", false},
		{"https://app.example/", "https://app.example/", false}, // neither is an origin
		{"null", "null", false},
		{"", "", false},
		{"https://\u212a.example", "https://k.example", false},
		{"http://app.example", "https://app.example", false},
		{"https://app.example:8443", "https://app.example", false},
	}
	for _, c := range cases {
		if got := Equal(c.a, c.b); got != c.want {
			t.Errorf("Equal(%q, %q) = %v", c.a, c.b, got)
		}
	}
	if !In("https://b.example", []string{"https://a.example", "https://B.example"}) || In("https://b.example/", []string{"https://b.example"}) || In("https://b.example", nil) {
		t.Error("In")
	}
	hosts := []struct {
		o, host string
		want    bool
	}{
		{"http://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"https://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"http://127.0.0.1:8080/", "127.0.0.1:8080", false},
		{"http://user@127.0.0.1:8080", "127.0.0.1:8080", false},
		{"http://127.0.0.1:8081", "127.0.0.1:8080", false},
		{"http://127.0.0.1:8080", "", false},
		{"null", "null", false},
	}
	for _, c := range hosts {
		if got := SameHost(c.o, c.host); got != c.want {
			t.Errorf("SameHost(%q, %q) = %v", c.o, c.host, got)
		}
	}
}

// FuzzParse: what Parse accepts is an origin net/url agrees with (scheme
// and host, nothing else), it splits it where it is, and Equal is reflexive
// on it and false on anything it refuses.
func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scheme, host, ok := Parse(s)
		if !ok {
			if Equal(s, s) {
				t.Fatalf("Equal(%q, itself) for a non-origin", s)
			}
			return
		}
		if s != scheme+"://"+host || !Equal(s, s) || !Equal(s, strings.ToUpper(s)) {
			t.Fatalf("Parse(%q) = %q, %q", s, scheme, host)
		}
		u, err := url.Parse(s)
		if err != nil || !strings.EqualFold(u.Scheme, scheme) || u.Host != host || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("Parse(%q) accepted what net/url reads as %#v (%v)", s, u, err)
		}
	})
}
