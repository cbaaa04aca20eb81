// Package origin is the one comparison of browser origins in ECB: the
// Origin check of the client API (CORS, Socket.IO, SSE), the Engine.IO
// server's own same-origin rule, and the origins an anonymous userToken is
// bound to all use it, so that what one accepts the others accept too.
//
// An origin is compared in its serialized form (RFC 6454 §6.2, the form a
// browser sends in the Origin header): scheme "://" host, with ":" port when
// the port is not the scheme's default, and nothing else. Anything more is
// not an origin and matches nothing: a path, even a lone "/"
// ("http://host:port/" is a URL, not an origin), userinfo, a query, a
// fragment, a non-ASCII host (browsers send punycode), an empty or
// non-numeric port. The opaque origin "null" matches nothing either (every
// sandboxed page sends it). Comparison is ASCII case-insensitive: Unicode
// folding would let "K" (U+212A KELVIN SIGN) pass for "k".
//
// The functions are pure and safe for concurrent use.
package origin

import (
	"net/netip"
	"strings"
)

// Parse splits a serialized origin into its scheme and its host (with the
// port, as in an HTTP Host header), and reports whether s is one.
func Parse(s string) (scheme, host string, ok bool) {
	i := 0
	for i < len(s) && isSchemeChar(s[i], i == 0) {
		i++
	}
	if i == 0 || len(s)-i < 4 || s[i:i+3] != "://" {
		return "", "", false
	}
	scheme, host = s[:i], s[i+3:]
	if !validHost(host) {
		return "", "", false
	}
	return scheme, host, true
}

// Equal reports whether a and b are both serialized origins and the same
// one (ASCII case-insensitively).
func Equal(a, b string) bool {
	if _, _, ok := Parse(a); !ok {
		return false
	}
	if _, _, ok := Parse(b); !ok {
		return false
	}
	return asciiEqualFold(a, b)
}

// In reports whether o is a serialized origin equal to one of list.
func In(o string, list []string) bool {
	if _, _, ok := Parse(o); !ok {
		return false
	}
	for _, a := range list {
		if Equal(o, a) {
			return true
		}
	}
	return false
}

// SameHost reports whether o is a serialized origin whose host (and port)
// is host, an HTTP Host header: the page was served by the server it calls
// (the scheme is not compared: behind a proxy that terminates TLS the
// server cannot tell it).
func SameHost(o, host string) bool {
	_, h, ok := Parse(o)
	return ok && host != "" && asciiEqualFold(h, host)
}

func isSchemeChar(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	case '0' <= c && c <= '9', c == '+', c == '-', c == '.':
		return !first
	}
	return false
}

// validHost accepts reg-name or IPv4 host, or a bracketed IPv6 address, with
// an optional port of 1 to 5 digits.
func validHost(h string) bool {
	name, port := h, ""
	if len(h) > 0 && h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		if ip, err := netip.ParseAddr(h[1:end]); err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
		name, port = "", h[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if port == "" {
				return false
			}
		}
	} else {
		for i := 0; i < len(h); i++ {
			if h[i] == ':' {
				name, port = h[:i], h[i+1:]
				if port == "" {
					return false
				}
				break
			}
		}
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(isHex(c) || 'g' <= c && c <= 'z' || 'G' <= c && c <= 'Z' || c == '-' || c == '.' || c == '_') {
				return false
			}
		}
	}
	if len(port) > 5 {
		return false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
