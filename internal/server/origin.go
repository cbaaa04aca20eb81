package server

import (
	"net/http"
	"strings"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/origin"
	"github.com/ecbridge/ecb/internal/sse"
)

// originPolicy decides which browser origins may call ECB. A request without
// an Origin header (server-to-server, same-origin GET) and a same-origin
// request are always allowed. Origins compare as package origin says: the
// serialized origin exactly (ASCII case-insensitively), so that
// "http://host:port/" or "http://user@host:port" is neither an allowed
// origin nor the page's own.
type originPolicy struct {
	any     bool
	allowed []string
}

func newOriginPolicy(list []string) originPolicy {
	p := originPolicy{}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		// config.Validate lets an entry end with one "/" (a URL pasted
		// from the address bar); the entry is the origin before it.
		p.allowed = append(p.allowed, strings.TrimSuffix(o, "/"))
	}
	return p
}

func (p originPolicy) allows(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || p.any || origin.In(o, p.allowed) || origin.SameHost(o, r.Host)
}

// cors answers preflights and refuses requests from origins not allowed, with
// the forbidden error: a browser page of another site cannot use a user's token.
// Credentials (cookies) are never allowed: ECB's tokens travel in headers.
func (p originPolicy) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !p.allows(r) {
			sse.WriteError(w, apierr.New(apierr.Forbidden, "origin %q is not allowed", origin))
			return
		}
		if origin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Retry-After")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, ECB-Thread-Token, ECB-Stream, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
