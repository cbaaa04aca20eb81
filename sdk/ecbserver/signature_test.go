package ecbserver

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// The vector was computed with:
//
//	printf '%s' '1700000000.{"accessToken":"abc"}' | openssl dgst -sha256 -hmac '0123456789abcdef0123456789abcdef' -hex
//
// It is also the worked example of docs/backend-contract.md.
const (
	vectorBody = `{"accessToken":"abc"}`
	vectorSig  = "v1=6d9324c2d68ab23f6eb23f65b21df22bb4254013c7da0acdbfd098e0074e3403"
)

var vectorTime = time.Unix(1700000000, 0)

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	if got := Sign(testSecret, vectorTime, []byte(vectorBody)); got != vectorSig {
		t.Fatalf("Sign = %s, want %s", got, vectorSig)
	}
}

func signedRequest(tb testing.TB, secret []byte, at time.Time, body string) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, "/authenticate", strings.NewReader(body))
	SignRequest(secret, r, []byte(body), at)
	return r
}

func TestVerifyRequestRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Now()
	r := signedRequest(t, testSecret, now, vectorBody)
	if got := r.Header.Get(HeaderTimestamp); got != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("timestamp header = %q", got)
	}
	if err := VerifyRequest(testSecret, r, []byte(vectorBody), now, 0); err != nil {
		t.Fatalf("VerifyRequest: %v", err)
	}
	// An empty body is a legal body to sign.
	r = signedRequest(t, testSecret, now, "")
	if err := VerifyRequest(testSecret, r, nil, now, 0); err != nil {
		t.Fatalf("VerifyRequest empty body: %v", err)
	}
}

func TestVerifyRequestRefuses(t *testing.T) {
	t.Parallel()
	now := vectorTime
	body := []byte(vectorBody)
	tests := []struct {
		name   string
		secret []byte
		mutate func(r *http.Request)
		body   []byte
		want   error
	}{
		{name: "altered body", body: []byte(`{"accessToken":"abd"}`), want: ErrBadSignature},
		{name: "wrong secret", secret: []byte("other"), want: ErrBadSignature},
		{name: "empty secret", secret: []byte{}, want: ErrBadSignature},
		{name: "altered timestamp", mutate: func(r *http.Request) {
			r.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
		}, want: ErrBadSignature},
		{name: "timestamp re-formatted", mutate: func(r *http.Request) {
			r.Header.Set(HeaderTimestamp, "+"+r.Header.Get(HeaderTimestamp))
		}, want: ErrBadSignature},
		{name: "timestamp not a number", mutate: func(r *http.Request) {
			r.Header.Set(HeaderTimestamp, "yesterday")
		}, want: ErrBadSignature},
		{name: "flipped signature digit", mutate: func(r *http.Request) {
			s := r.Header.Get(HeaderSignature)
			r.Header.Set(HeaderSignature, s[:len(s)-1]+"0")
		}, want: ErrBadSignature},
		{name: "unknown scheme prefix", mutate: func(r *http.Request) {
			r.Header.Set(HeaderSignature, "v2="+strings.TrimPrefix(r.Header.Get(HeaderSignature), "v1="))
		}, want: ErrBadSignature},
		{name: "short signature", mutate: func(r *http.Request) {
			r.Header.Set(HeaderSignature, "v1=abcd")
		}, want: ErrBadSignature},
		{name: "not hex", mutate: func(r *http.Request) {
			r.Header.Set(HeaderSignature, "v1="+strings.Repeat("zz", 32))
		}, want: ErrBadSignature},
		{name: "no signature", mutate: func(r *http.Request) { r.Header.Del(HeaderSignature) }, want: ErrMissingSignature},
		{name: "no timestamp", mutate: func(r *http.Request) { r.Header.Del(HeaderTimestamp) }, want: ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := signedRequest(t, testSecret, now, vectorBody)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			secret := testSecret
			if tt.secret != nil {
				secret = tt.secret
			}
			b := body
			if tt.body != nil {
				b = tt.body
			}
			err := VerifyRequest(secret, r, b, now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRequestWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		offset time.Duration // signing time minus now
		window time.Duration
		want   error
	}{
		{"now", 0, 0, nil},
		{"4m59s old", -(4*time.Minute + 59*time.Second), 0, nil},
		{"5m old, on the edge", -5 * time.Minute, 0, nil},
		{"5m01s old", -(5*time.Minute + time.Second), 0, ErrStaleTimestamp},
		{"an hour old", -time.Hour, 0, ErrStaleTimestamp},
		{"5m ahead, on the edge", 5 * time.Minute, 0, nil},
		{"5m01s ahead", 5*time.Minute + time.Second, 0, ErrStaleTimestamp},
		{"custom window 30s, 29s old", -29 * time.Second, 30 * time.Second, nil},
		{"custom window 30s, 31s old", -31 * time.Second, 30 * time.Second, ErrStaleTimestamp},
		{"custom window 30s, 31s ahead", 31 * time.Second, 30 * time.Second, ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := signedRequest(t, testSecret, now.Add(tt.offset), vectorBody)
			err := VerifyRequest(testSecret, r, []byte(vectorBody), now, tt.window)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRequestAbsurdTimestamps(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	for _, ts := range []string{"9223372036854775807", "-9223372036854775808", "0"} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set(HeaderTimestamp, ts)
		r.Header.Set(HeaderSignature, "v1="+hexMAC(testSecret, ts, nil))
		if err := VerifyRequest(testSecret, r, nil, now, 0); !errors.Is(err, ErrStaleTimestamp) {
			t.Errorf("timestamp %s: err = %v, want ErrStaleTimestamp", ts, err)
		}
	}
}

func hexMAC(secret []byte, ts string, body []byte) string {
	return hex.EncodeToString(mac(secret, ts, body))
}
