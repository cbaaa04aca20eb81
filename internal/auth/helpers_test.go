package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testAudience = "ecb"
	testIssuer   = "https://backend.example.com"
	testSecret   = "0123456789abcdef0123456789abcdef-hs256"
	testOrigin   = "https://shop.example.com"
)

type testKeySet struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

// keys generates the package's test keys once: RSA generation is slow.
var keys = sync.OnceValue(func() testKeySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	r1, err := auth.GenerateRSAKey(2048)
	must(err)
	r2, err := auth.GenerateRSAKey(2048)
	must(err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	return testKeySet{rsa: r1, rsa2: r2, ec: ec, ed: ed}
})

// userClaims returns valid userToken claims, changed by mods.
func userClaims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"typ":        "user",
		"sub":        "u-1",
		"name":       "Ann Agent",
		"roles":      []string{"agent"},
		"workgroups": []string{"billing"},
		"aud":        testAudience,
		"iss":        testIssuer,
		"iat":        now.Unix(),
		"exp":        now.Add(time.Hour).Unix(),
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// threadClaims returns valid threadToken claims, changed by mods.
func threadClaims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"typ":     "thread",
		"sub":     "t-1",
		"uid":     "u-1",
		"acc":     3,
		"members": []string{"u-1", "u-2"},
		"aud":     testAudience,
		"iss":     testIssuer,
		"iat":     now.Unix(),
		"exp":     now.Add(time.Hour).Unix(),
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func set(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
func del(k string) func(jwt.MapClaims)        { return func(c jwt.MapClaims) { delete(c, k) } }

func anon(origins ...string) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) {
		c["anon"] = true
		c["origins"] = origins
		delete(c, "roles")
		delete(c, "workgroups")
	}
}

// sign signs claims with key; a non-empty kid goes into the header.
func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(method, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

func rs256(tb testing.TB, c jwt.MapClaims) string {
	tb.Helper()
	return sign(tb, jwt.SigningMethodRS256, keys().rsa, "", c)
}

// newVerifier builds a Verifier trusting pubs, with the test audience and issuer.
func newVerifier(tb testing.TB, cfg auth.Config, pubs ...crypto.PublicKey) *auth.Verifier {
	tb.Helper()
	cfg.Audience, cfg.Issuer = testAudience, testIssuer
	v, err := auth.NewVerifierFromKeys(cfg, pubs...)
	if err != nil {
		tb.Fatalf("NewVerifierFromKeys: %v", err)
	}
	return v
}

// allAlgs trusts every test key and the shared secret.
func allAlgs(tb testing.TB) *auth.Verifier {
	tb.Helper()
	k := keys()
	return newVerifier(tb, auth.Config{
		Algorithms:   []string{auth.AlgRS256, auth.AlgES256, auth.AlgEdDSA, auth.AlgHS256},
		SharedSecret: testSecret,
	}, k.rsa.Public(), k.ec.Public(), k.ed.Public())
}

// rsaOnly is the default configuration: RS256 and one RSA key.
func rsaOnly(tb testing.TB) *auth.Verifier {
	tb.Helper()
	return newVerifier(tb, auth.Config{}, keys().rsa.Public())
}

var sentinels = []error{
	auth.ErrMissingToken, auth.ErrMalformed, auth.ErrExpired, auth.ErrNotYetValid,
	auth.ErrSignature, auth.ErrAudience, auth.ErrIssuer, auth.ErrWrongType,
	auth.ErrOrigin, auth.ErrAlgorithm,
}

// isSentinel reports whether err wraps exactly one of the package's sentinels.
func isSentinel(err error) bool {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1
}
