package auth

import (
	"net/http"

	"github.com/ecbridge/ecb/internal/origin"
)

// originAllowed reports whether o, the request's origin, is one of the
// origins claim of an anonymous token: the comparison of package origin
// (the serialized origin exactly, ASCII case-insensitively; "null", a
// trailing "/" or any other non-origin matches nothing), the same as the
// Origin check of the client API.
func originAllowed(o string, allowed []string) bool { return origin.In(o, allowed) }

// RequestOrigin is the origin a request comes from, for the origins of an
// anonymous userToken: its Origin header or, when a browser left it out
// because the request is same-origin (a same-origin GET such as a
// Socket.IO polling request or an EventSource; the browser then sends
// Sec-Fetch-Site: same-origin, which scripts cannot set), the origin the
// request was addressed to. Behind a proxy that terminates TLS that origin
// reads http://, so such a token fails closed unless it lists it.
func RequestOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	if r.Header.Get("Sec-Fetch-Site") != "same-origin" || r.Host == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
