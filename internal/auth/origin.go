package auth

import "net/http"

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
