package socketio

import (
	"net/http"

	"github.com/ecbridge/ecb/internal/origin"
)

// originAllowed applies Config.CheckOrigin, or Config.AllowedOrigins, or
// the same-origin rule, to a request that carries an Origin header. Origins
// compare as serialized origins (package origin): "http://host:port/" is not
// the origin "http://host:port".
func (e *Engine) originAllowed(r *http.Request, o string) bool {
	if e.cfg.CheckOrigin != nil {
		return e.cfg.CheckOrigin(r)
	}
	if len(e.cfg.AllowedOrigins) == 0 {
		return origin.SameHost(o, r.Host)
	}
	for _, a := range e.cfg.AllowedOrigins {
		if a == "*" || origin.Equal(o, a) {
			return true
		}
	}
	return false
}

// setCORS sets the CORS response headers for an allowed origin: the origin
// is echoed (which also works with credentials), with Vary: Origin.
func (e *Engine) setCORS(h http.Header, r *http.Request, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if e.cfg.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "86400")
	}
}
