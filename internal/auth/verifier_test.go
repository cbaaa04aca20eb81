package auth_test

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

// userCase is one row of the userToken table; the fuzz test reuses the rows as seeds.
type userCase struct {
	name   string
	token  string
	origin string
	rsaErr error // the result with the default RS256-only verifier; nil: accepted
	allErr error // the result with every algorithm and the shared secret allowed
}

func userCases(tb testing.TB) []userCase {
	tb.Helper()
	k := keys()
	now := time.Now()
	rsaPubPEM, err := auth.EncodePublicKeyPEM(k.rsa.Public())
	if err != nil {
		tb.Fatal(err)
	}
	rsaPubDER, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
	if err != nil {
		tb.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, userClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		tb.Fatal(err)
	}
	valid := rs256(tb, userClaims())
	parts := strings.Split(valid, ".")
	forged := sign(tb, jwt.SigningMethodRS256, k.rsa, "", userClaims(set("sub", "admin")))
	tampered := parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	crit := jwt.NewWithClaims(jwt.SigningMethodRS256, userClaims())
	crit.Header["crit"] = []string{"exp"}
	critToken, err := crit.SignedString(k.rsa)
	if err != nil {
		tb.Fatal(err)
	}
	hs := func(key []byte, c jwt.MapClaims) string { return sign(tb, jwt.SigningMethodHS256, key, "", c) }
	unknownAlg := strings.Replace(valid, parts[0], b64(`{"alg":"XX999","typ":"JWT"}`), 1)
	noAlg := strings.Replace(valid, parts[0], b64(`{"typ":"JWT"}`), 1)

	return []userCase{
		{name: "RS256 valid", token: valid},
		{name: "RS256 with a kid (ignored for local keys)", token: sign(tb, jwt.SigningMethodRS256, k.rsa, "any-kid", userClaims())},
		{name: "ES256", token: sign(tb, jwt.SigningMethodES256, k.ec, "", userClaims()), rsaErr: auth.ErrAlgorithm},
		{name: "EdDSA", token: sign(tb, jwt.SigningMethodEdDSA, k.ed, "", userClaims()), rsaErr: auth.ErrAlgorithm},
		{name: "HS256 with the secret", token: hs([]byte(testSecret), userClaims()), rsaErr: auth.ErrAlgorithm},
		{name: "HS256 with another secret", token: hs([]byte("another-secret-another-secret-xx"), userClaims()), rsaErr: auth.ErrAlgorithm, allErr: auth.ErrSignature},
		{name: "HS256 keyed with the public key PEM", token: hs(rsaPubPEM, userClaims()), rsaErr: auth.ErrAlgorithm, allErr: auth.ErrSignature},
		{name: "HS256 keyed with the public key DER", token: hs(rsaPubDER, userClaims()), rsaErr: auth.ErrAlgorithm, allErr: auth.ErrSignature},
		{name: "HS384 (known to jwt, never allowed)", token: sign(tb, jwt.SigningMethodHS384, []byte(testSecret), "", userClaims()), rsaErr: auth.ErrAlgorithm, allErr: auth.ErrAlgorithm},
		{name: "RS512 (known to jwt, never allowed)", token: sign(tb, jwt.SigningMethodRS512, k.rsa, "", userClaims()), rsaErr: auth.ErrAlgorithm, allErr: auth.ErrAlgorithm},
		{name: "alg none", token: none, rsaErr: auth.ErrAlgorithm, allErr: auth.ErrAlgorithm},
		{name: "alg unknown", token: unknownAlg, rsaErr: auth.ErrAlgorithm, allErr: auth.ErrAlgorithm},
		{name: "alg missing", token: noAlg, rsaErr: auth.ErrAlgorithm, allErr: auth.ErrAlgorithm},
		{name: "ES256 signature under an RS256 header", token: strings.Replace(sign(tb, jwt.SigningMethodES256, k.ec, "", userClaims()), b64(`{"alg":"ES256","typ":"JWT"}`), parts[0], 1), rsaErr: auth.ErrSignature, allErr: auth.ErrSignature},
		{name: "signed by an unknown key", token: sign(tb, jwt.SigningMethodRS256, k.rsa2, "", userClaims()), rsaErr: auth.ErrSignature, allErr: auth.ErrSignature},
		{name: "payload swapped", token: tampered, rsaErr: auth.ErrSignature, allErr: auth.ErrSignature},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", rsaErr: auth.ErrSignature, allErr: auth.ErrSignature},
		{name: "expired", token: rs256(tb, userClaims(set("exp", now.Add(-2*time.Minute).Unix()))), rsaErr: auth.ErrExpired, allErr: auth.ErrExpired},
		{name: "expired within leeway", token: rs256(tb, userClaims(set("exp", now.Add(-10*time.Second).Unix())))},
		{name: "no exp", token: rs256(tb, userClaims(del("exp"))), rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "exp not a number", token: rs256(tb, userClaims(set("exp", "tomorrow"))), rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "nbf in the future", token: rs256(tb, userClaims(set("nbf", now.Add(2*time.Minute).Unix()))), rsaErr: auth.ErrNotYetValid, allErr: auth.ErrNotYetValid},
		{name: "nbf within leeway", token: rs256(tb, userClaims(set("nbf", now.Add(10*time.Second).Unix())))},
		{name: "nbf past", token: rs256(tb, userClaims(set("nbf", now.Add(-time.Minute).Unix())))},
		{name: "aud list holding ours", token: rs256(tb, userClaims(set("aud", []string{"other", testAudience})))},
		{name: "wrong aud", token: rs256(tb, userClaims(set("aud", "other"))), rsaErr: auth.ErrAudience, allErr: auth.ErrAudience},
		{name: "no aud", token: rs256(tb, userClaims(del("aud"))), rsaErr: auth.ErrAudience, allErr: auth.ErrAudience},
		{name: "wrong iss", token: rs256(tb, userClaims(set("iss", "https://evil.example.com"))), rsaErr: auth.ErrIssuer, allErr: auth.ErrIssuer},
		{name: "no iss", token: rs256(tb, userClaims(del("iss"))), rsaErr: auth.ErrIssuer, allErr: auth.ErrIssuer},
		{name: "typ thread", token: rs256(tb, threadClaims()), rsaErr: auth.ErrWrongType, allErr: auth.ErrWrongType},
		{name: "typ missing", token: rs256(tb, userClaims(del("typ"))), rsaErr: auth.ErrWrongType, allErr: auth.ErrWrongType},
		{name: "typ in other case", token: rs256(tb, userClaims(set("typ", "User"))), rsaErr: auth.ErrWrongType, allErr: auth.ErrWrongType},
		{name: "no sub", token: rs256(tb, userClaims(del("sub"))), rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "sub not a string", token: rs256(tb, userClaims(set("sub", 42))), rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "crit header", token: critToken, rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "empty", token: "", rsaErr: auth.ErrMissingToken, allErr: auth.ErrMissingToken},
		{name: "garbage", token: "not-a-token", rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "three empty parts", token: "..", rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "too long", token: valid + strings.Repeat("A", auth.MaxTokenBytes), rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "non-anonymous ignores origin", token: valid, origin: "https://anything.example.org"},
		{name: "anonymous, origin allowed", token: rs256(tb, userClaims(anon("https://other.example.com", testOrigin))), origin: testOrigin},
		{name: "anonymous, origin in other case", token: rs256(tb, userClaims(anon(testOrigin))), origin: "HTTPS://Shop.Example.COM"},
		{name: "anonymous, origin with port", token: rs256(tb, userClaims(anon("http://localhost:8080"))), origin: "http://localhost:8080"},
		{name: "anonymous, other origin", token: rs256(tb, userClaims(anon(testOrigin))), origin: "https://evil.example.com", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, other scheme", token: rs256(tb, userClaims(anon(testOrigin))), origin: "http://shop.example.com", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, other port", token: rs256(tb, userClaims(anon(testOrigin))), origin: testOrigin + ":8443", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, trailing slash", token: rs256(tb, userClaims(anon(testOrigin))), origin: testOrigin + "/", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		// A claim that is not a serialized origin matches nothing, not even itself.
		{name: "anonymous, trailing slash in claim and Origin", token: rs256(tb, userClaims(anon(testOrigin+"/"))), origin: testOrigin + "/", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, userinfo in claim and Origin", token: rs256(tb, userClaims(anon("https://u@shop.example.com"))), origin: "https://u@shop.example.com", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, suffix attack", token: rs256(tb, userClaims(anon(testOrigin))), origin: testOrigin + ".evil.com", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, Kelvin sign", token: rs256(tb, userClaims(anon("https://kelvin.example.com"))), origin: "https://\u212aelvin.example.com", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, no Origin", token: rs256(tb, userClaims(anon(testOrigin))), rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous, Origin null", token: rs256(tb, userClaims(anon("null"))), origin: "null", rsaErr: auth.ErrOrigin, allErr: auth.ErrOrigin},
		{name: "anonymous without origins", token: rs256(tb, userClaims(anon())), origin: testOrigin, rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
		{name: "anonymous with empty origins claim", token: rs256(tb, userClaims(anon(), del("origins"))), origin: testOrigin, rsaErr: auth.ErrMalformed, allErr: auth.ErrMalformed},
	}
}

// b64 is base64url without padding, for hand-made headers.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyUser(t *testing.T) {
	t.Parallel()
	verifiers := []struct {
		name string
		v    *auth.Verifier
		want func(userCase) error
	}{
		{"rs256-only", rsaOnly(t), func(c userCase) error { return c.rsaErr }},
		{"all-algorithms", allAlgs(t), func(c userCase) error { return c.allErr }},
	}
	for _, c := range userCases(t) {
		for _, vc := range verifiers {
			t.Run(vc.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				u, err := vc.v.VerifyUser(c.token, c.origin)
				want := vc.want(c)
				if want == nil {
					if err != nil {
						t.Fatalf("VerifyUser: %v, want success", err)
					}
					if u.ID == "" || u.ExpiresAt.IsZero() {
						t.Fatalf("user = %+v", u)
					}
					return
				}
				if !errors.Is(err, want) {
					t.Fatalf("VerifyUser: %v, want %v", err, want)
				}
				if !isSentinel(err) {
					t.Fatalf("%v wraps not exactly one sentinel", err)
				}
				if u != nil {
					t.Fatal("non-nil user with an error")
				}
				if len(c.token) > 0 && strings.Contains(err.Error(), c.token) {
					t.Fatal("the error quotes the token")
				}
			})
		}
	}
}

func TestVerifyUserFields(t *testing.T) {
	t.Parallel()
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	exp := iat.Add(time.Hour)
	tok := rs256(t, userClaims(set("iat", iat.Unix()), set("exp", exp.Unix()), set("roles", []string{"agent", "supervisor"})))
	u, err := rsaOnly(t).VerifyUser(tok, "")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "u-1" || u.Name != "Ann Agent" || u.Anonymous || !u.HasRole("supervisor") ||
		!slices.Equal(u.Workgroups, []string{"billing"}) || u.IssuedAt != iat.Unix() || !u.ExpiresAt.Equal(exp) {
		t.Fatalf("user = %+v", u)
	}

	u, err = rsaOnly(t).VerifyUser(rs256(t, userClaims(anon(testOrigin), del("iat"))), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Anonymous || u.IssuedAt != 0 {
		t.Fatalf("anonymous user = %+v", u)
	}
}

func threadCases(tb testing.TB) []struct {
	name  string
	token string
	err   error
} {
	tb.Helper()
	return []struct {
		name  string
		token string
		err   error
	}{
		{"valid", rs256(tb, threadClaims()), nil},
		{"acc 0 (no access) is a value", rs256(tb, threadClaims(set("acc", 0))), nil},
		{"acc 15", rs256(tb, threadClaims(set("acc", 15))), nil},
		{"acc 16", rs256(tb, threadClaims(set("acc", 16))), auth.ErrMalformed},
		{"acc -1", rs256(tb, threadClaims(set("acc", -1))), auth.ErrMalformed},
		{"acc a string", rs256(tb, threadClaims(set("acc", "3"))), auth.ErrMalformed},
		{"acc a fraction", rs256(tb, threadClaims(set("acc", 1.5))), auth.ErrMalformed},
		{"no acc", rs256(tb, threadClaims(del("acc"))), auth.ErrMalformed},
		{"no uid", rs256(tb, threadClaims(del("uid"))), auth.ErrMalformed},
		{"no sub", rs256(tb, threadClaims(del("sub"))), auth.ErrMalformed},
		{"typ user", rs256(tb, userClaims(set("acc", 3), set("uid", "u-1"))), auth.ErrWrongType},
		{"typ missing", rs256(tb, threadClaims(del("typ"))), auth.ErrWrongType},
		{"expired", rs256(tb, threadClaims(set("exp", time.Now().Add(-time.Hour).Unix()))), auth.ErrExpired},
		{"wrong aud", rs256(tb, threadClaims(set("aud", "x"))), auth.ErrAudience},
		{"wrong iss", rs256(tb, threadClaims(set("iss", "x"))), auth.ErrIssuer},
		{"unknown key", sign(tb, jwt.SigningMethodRS256, keys().rsa2, "", threadClaims()), auth.ErrSignature},
		{"ES256 not allowed", sign(tb, jwt.SigningMethodES256, keys().ec, "", threadClaims()), auth.ErrAlgorithm},
		{"empty", "", auth.ErrMissingToken},
	}
}

func TestVerifyThread(t *testing.T) {
	t.Parallel()
	v := rsaOnly(t)
	for _, c := range threadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			th, err := v.VerifyThread(c.token)
			if c.err == nil {
				if err != nil {
					t.Fatalf("VerifyThread: %v, want success", err)
				}
				if th.ThreadID != "t-1" || th.UserID != "u-1" || th.ExpiresAt.IsZero() {
					t.Fatalf("thread = %+v", th)
				}
				return
			}
			if !errors.Is(err, c.err) || !isSentinel(err) {
				t.Fatalf("VerifyThread: %v, want %v", err, c.err)
			}
			if th != nil {
				t.Fatal("non-nil thread with an error")
			}
		})
	}
}

func TestVerifyThreadFields(t *testing.T) {
	t.Parallel()
	th, err := rsaOnly(t).VerifyThread(rs256(t, threadClaims(set("acc", int(auth.AccessRead|auth.AccessAdmin)))))
	if err != nil {
		t.Fatal(err)
	}
	if !th.Access.Has(auth.AccessRead|auth.AccessAdmin) || th.Access.Has(auth.AccessWrite) ||
		!slices.Equal(th.Members, []string{"u-1", "u-2"}) {
		t.Fatalf("thread = %+v", th)
	}
}

// A threadToken must never pass as a userToken, whatever the origin.
func TestThreadTokenIsNotAUserToken(t *testing.T) {
	t.Parallel()
	v := rsaOnly(t)
	tok := rs256(t, threadClaims(set("name", "x"), set("anon", true), set("origins", []string{testOrigin})))
	if _, err := v.VerifyUser(tok, testOrigin); !errors.Is(err, auth.ErrWrongType) {
		t.Fatalf("VerifyUser(threadToken) = %v, want ErrWrongType", err)
	}
}

func TestLeewayConfigurable(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Leeway: 5 * time.Minute}, keys().rsa.Public())
	if _, err := v.VerifyUser(rs256(t, userClaims(set("exp", time.Now().Add(-2*time.Minute).Unix()))), ""); err != nil {
		t.Fatalf("expired 2m ago with a 5m leeway: %v", err)
	}
	if _, err := v.VerifyUser(rs256(t, userClaims(set("exp", time.Now().Add(-10*time.Minute).Unix()))), ""); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("expired 10m ago with a 5m leeway: %v", err)
	}
}

// Without Audience and Issuer configured, aud and iss are not checked.
func TestAudienceIssuerOptional(t *testing.T) {
	t.Parallel()
	v, err := auth.NewVerifierFromKeys(auth.Config{}, keys().rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyUser(rs256(t, userClaims(set("aud", "anything"), del("iss"))), ""); err != nil {
		t.Fatal(err)
	}
}

func TestVerifierConcurrent(t *testing.T) {
	t.Parallel()
	v := allAlgs(t)
	user := rs256(t, userClaims())
	thread := sign(t, jwt.SigningMethodEdDSA, keys().ed, "", threadClaims())
	done := make(chan error)
	for range 8 {
		go func() {
			for range 50 {
				if _, err := v.VerifyUser(user, ""); err != nil {
					done <- err
					return
				}
				if _, err := v.VerifyThread(thread); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkVerifyUser(b *testing.B) {
	k := keys()
	v := allAlgs(b)
	for _, bc := range []struct {
		alg   string
		token string
	}{
		{"RS256", rs256(b, userClaims())},
		{"ES256", sign(b, jwt.SigningMethodES256, k.ec, "", userClaims())},
		{"EdDSA", sign(b, jwt.SigningMethodEdDSA, k.ed, "", userClaims())},
		{"HS256", sign(b, jwt.SigningMethodHS256, []byte(testSecret), "", userClaims())},
	} {
		b.Run(bc.alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyUser(bc.token, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyThread(b *testing.B) {
	v := rsaOnly(b)
	tok := rs256(b, threadClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyThread(tok); err != nil {
			b.Fatal(err)
		}
	}
}
