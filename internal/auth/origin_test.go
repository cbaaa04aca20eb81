package auth_test

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/ecbridge/ecb/internal/auth"
)

func TestRequestOrigin(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		tls     bool
		want    string
	}{
		{"Origin header", map[string]string{"Origin": "https://shop.example.com"}, false, "https://shop.example.com"},
		{"Origin wins over same-origin", map[string]string{"Origin": "https://a.example", "Sec-Fetch-Site": "same-origin"}, false, "https://a.example"},
		{"same-origin GET without Origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, false, "http://ecb.example:8080"},
		{"same-origin over TLS", map[string]string{"Sec-Fetch-Site": "same-origin"}, true, "https://ecb.example:8080"},
		{"cross-site without Origin", map[string]string{"Sec-Fetch-Site": "cross-site"}, false, ""},
		{"same-site is not same-origin", map[string]string{"Sec-Fetch-Site": "same-site"}, false, ""},
		{"no browser headers", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://ecb.example:8080/socket.io/?EIO=4", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := auth.RequestOrigin(r); got != tt.want {
				t.Fatalf("RequestOrigin = %q, want %q", got, tt.want)
			}
		})
	}
}
