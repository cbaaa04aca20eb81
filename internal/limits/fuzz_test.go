package limits_test

import (
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/limits"
)

// FuzzClientIP: any X-Forwarded-For and proxy list gives the peer's address
// or one of the header's, never a panic.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ remote, xff, proxies string }{
		{"10.1.1.1:5", "6.6.6.6, 9.9.9.9", "10.0.0.0/8"},
		{"[::1]:80", "2001:db8::1", "::1"},
		{"1.2.3.4:5", "", ""},
		{"garbage", ",,,", "1.2.3.4,::/0"},
		{"10.0.0.1:1", "10.0.0.2, 10.0.0.3", "0.0.0.0/0"},
	} {
		f.Add(s.remote, s.xff, s.proxies)
	}
	f.Fuzz(func(t *testing.T, remote, xff, proxyList string) {
		proxies, err := limits.ParseProxies(strings.Split(proxyList, ","))
		if err != nil {
			proxies = nil
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := limits.ClientIP(r, proxies)
		_ = limits.IPKey(got)
		if !got.IsValid() {
			return
		}
		var candidates []netip.Addr
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		if a, err := netip.ParseAddr(host); err == nil {
			candidates = append(candidates, a.Unmap())
		}
		for _, h := range strings.Split(r.Header.Get("X-Forwarded-For"), ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil {
				candidates = append(candidates, a.Unmap())
			}
		}
		for _, c := range candidates {
			if c == got {
				return
			}
		}
		t.Fatalf("client %s is neither the peer %q nor in X-Forwarded-For %q", got, remote, xff)
	})
}
