package ecbserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RSA key generation is slow under -race; generate each key type once.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return map[string]crypto.Signer{"RS256": rsaKey, "ES256": ecKey, "EdDSA": edKey}
})

type parsedUser struct {
	jwt.RegisteredClaims
	UserClaims
}

type parsedThread struct {
	jwt.RegisteredClaims
	ThreadClaims
}

// parse verifies tok the way ECB does: fixed algorithm, audience, expiry.
func parse(tb testing.TB, s *TokenSigner, tok string, claims jwt.Claims) *jwt.Token {
	tb.Helper()
	t, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return s.PublicKey(), nil },
		jwt.WithValidMethods([]string{s.Algorithm()}), jwt.WithAudience("ecb-test"),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		tb.Fatalf("parse %s token: %v", s.Algorithm(), err)
	}
	return t
}

func TestTokenSignerAlgorithms(t *testing.T) {
	t.Parallel()
	for alg, key := range testKeys() {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			s, err := NewTokenSigner(key, SignerOptions{Audience: "ecb-test", Issuer: "acme", KeyID: "k1"})
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != alg {
				t.Fatalf("Algorithm = %s, want %s", s.Algorithm(), alg)
			}
			tok, err := s.SignUserToken(UserTokenParams{ID: "agent1", Name: "Agent One", Roles: []string{"agent"}, Workgroups: []string{"support"}})
			if err != nil {
				t.Fatal(err)
			}
			var uc parsedUser
			pt := parse(t, s, tok, &uc)
			if pt.Header["kid"] != "k1" || pt.Header["alg"] != alg {
				t.Fatalf("header %v", pt.Header)
			}
			if uc.Subject != "agent1" || uc.Typ != TokenTypeUser || uc.Name != "Agent One" || uc.Issuer != "acme" ||
				!slices.Equal(uc.Roles, []string{"agent"}) || !slices.Equal(uc.Workgroups, []string{"support"}) ||
				uc.Anon || uc.ID == "" {
				t.Fatalf("user claims %+v", uc)
			}

			tok, err = s.SignThreadToken(ThreadTokenParams{ThreadID: "t1", UserID: "alice", Access: AccessRead | AccessWrite, Members: []string{"alice", "bob"}})
			if err != nil {
				t.Fatal(err)
			}
			var tc parsedThread
			parse(t, s, tok, &tc)
			if tc.Subject != "t1" || tc.Typ != TokenTypeThread || tc.UID != "alice" || tc.Acc != 3 ||
				!slices.Equal(tc.Members, []string{"alice", "bob"}) {
				t.Fatalf("thread claims %+v", tc)
			}
		})
	}
}

func TestTokenSignerTTLs(t *testing.T) {
	t.Parallel()
	key := testKeys()["EdDSA"]
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name  string
		opts  SignerOptions
		sign  func(s *TokenSigner) (string, error)
		claim jwt.Claims
		want  time.Duration
	}{
		{"user default", SignerOptions{}, func(s *TokenSigner) (string, error) {
			return s.SignUserToken(UserTokenParams{ID: "a", Name: "A"})
		}, &parsedUser{}, time.Hour},
		{"user custom", SignerOptions{UserTTL: 10 * time.Minute}, func(s *TokenSigner) (string, error) {
			return s.SignUserToken(UserTokenParams{ID: "a", Name: "A"})
		}, &parsedUser{}, 10 * time.Minute},
		{"thread custom", SignerOptions{ThreadTTL: 2 * time.Hour}, func(s *TokenSigner) (string, error) {
			return s.SignThreadToken(ThreadTokenParams{ThreadID: "t", UserID: "a"})
		}, &parsedThread{}, 2 * time.Hour},
		{"anon default", SignerOptions{}, func(s *TokenSigner) (string, error) {
			return s.SignAnonymousToken(AnonParams{Origins: []string{"https://shop.example"}})
		}, &parsedUser{}, DefaultAnonTTL},
		{"anon custom", SignerOptions{}, func(s *TokenSigner) (string, error) {
			return s.SignAnonymousToken(AnonParams{Origins: []string{"https://shop.example"}, TTL: time.Minute})
		}, &parsedUser{}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Audience = "ecb-test"
			s, err := NewTokenSigner(key, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			s.now = func() time.Time { return now }
			tok, err := tt.sign(s)
			if err != nil {
				t.Fatal(err)
			}
			parse(t, s, tok, tt.claim)
			exp, _ := tt.claim.GetExpirationTime()
			iat, _ := tt.claim.GetIssuedAt()
			if got := exp.Sub(iat.Time); got != tt.want || !iat.Equal(now) {
				t.Fatalf("lifetime %s (iat %s), want %s from %s", got, iat, tt.want, now)
			}
		})
	}
}

func TestSignAnonymousToken(t *testing.T) {
	t.Parallel()
	s, err := NewTokenSigner(testKeys()["ES256"], SignerOptions{Audience: "ecb-test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.SignAnonymousToken(AnonParams{Origins: []string{"https://shop.example", "http://localhost:3000"}})
	if err != nil {
		t.Fatal(err)
	}
	var uc parsedUser
	parse(t, s, tok, &uc)
	if !uc.Anon || uc.Typ != TokenTypeUser || uc.Name != "Visitor" || len(uc.Subject) < len("anon-")+1 ||
		!slices.Equal(uc.Origins, []string{"https://shop.example", "http://localhost:3000"}) {
		t.Fatalf("claims %+v", uc)
	}
	tok2, err := s.SignAnonymousToken(AnonParams{Origins: []string{"https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	var uc2 parsedUser
	parse(t, s, tok2, &uc2)
	if uc2.Subject == uc.Subject {
		t.Fatal("two anonymous visitors got the same id")
	}

	for _, bad := range [][]string{nil, {""}, {"shop.example"}, {"https://shop.example/"}, {"https://shop.example/path"},
		{"https://u:p@shop.example"}, {"https://shop.example?q=1"}} {
		if _, err := s.SignAnonymousToken(AnonParams{Origins: bad}); err == nil {
			t.Errorf("origins %q accepted", bad)
		}
	}
}

func TestTokenSignerRefuses(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"rsa1024": small, "p384": p384, "nil": nil} {
		if _, err := NewTokenSigner(key, SignerOptions{Audience: "a"}); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("%s: err = %v, want ErrUnsupportedKey", name, err)
		}
	}
	key := testKeys()["EdDSA"]
	if _, err := NewTokenSigner(key, SignerOptions{}); err == nil {
		t.Error("no audience accepted")
	}
	if _, err := NewTokenSigner(key, SignerOptions{Audience: "a", UserTTL: -1}); err == nil {
		t.Error("negative TTL accepted")
	}
	s, err := NewTokenSigner(key, SignerOptions{Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignUserToken(UserTokenParams{Name: "no id"}); err == nil {
		t.Error("user token without ID")
	}
	if _, err := s.SignUserToken(UserTokenParams{ID: "no name"}); err == nil {
		t.Error("user token without name")
	}
	if _, err := s.SignThreadToken(ThreadTokenParams{UserID: "a"}); err == nil {
		t.Error("thread token without thread")
	}
	for _, acc := range []int{-1, 16} {
		if _, err := s.SignThreadToken(ThreadTokenParams{ThreadID: "t", UserID: "a", Access: acc}); err == nil {
			t.Errorf("access %d accepted", acc)
		}
	}
}

// TestThreadTokenCarriesZeroAccess: acc 0 (banned) must be in the token, not
// left out, or a verifier could not tell "banned" from "claim missing".
func TestThreadTokenCarriesZeroAccess(t *testing.T) {
	t.Parallel()
	s, err := NewTokenSigner(testKeys()["EdDSA"], SignerOptions{Audience: "ecb-test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.SignThreadToken(ThreadTokenParams{ThreadID: "t", UserID: "a", Access: AccessNone})
	if err != nil {
		t.Fatal(err)
	}
	var m jwt.MapClaims
	parse(t, s, tok, &m)
	if v, ok := m["acc"]; !ok || v != float64(0) {
		t.Fatalf("acc claim = %v (present %v)", v, ok)
	}
}

// ReissueThreadToken signs only when the author's token nears its exp, grants
// other access, or is not described (an ECB older than contract 1.5).
func TestReissueThreadToken(t *testing.T) {
	t.Parallel()
	s, err := NewTokenSigner(testKeys()["EdDSA"], SignerOptions{Audience: "ecb", ThreadTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	p := ThreadTokenParams{ThreadID: "t", UserID: "u", Access: 3}
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	acc := func(a int) *int { return &a }
	cases := []struct {
		name  string
		req   *AddThreadMessageRequest
		fresh bool
	}{
		{"valid for long", &AddThreadMessageRequest{ThreadTokenExpiresAt: at(30 * time.Minute), ThreadTokenAccess: acc(3)}, false},
		{"within a quarter of the TTL", &AddThreadMessageRequest{ThreadTokenExpiresAt: at(14 * time.Minute), ThreadTokenAccess: acc(3)}, true},
		{"expired", &AddThreadMessageRequest{ThreadTokenExpiresAt: at(-time.Minute), ThreadTokenAccess: acc(3)}, true},
		{"other access", &AddThreadMessageRequest{ThreadTokenExpiresAt: at(30 * time.Minute), ThreadTokenAccess: acc(1)}, true},
		{"no expiry sent", &AddThreadMessageRequest{ThreadTokenAccess: acc(3)}, true},
		{"no access sent", &AddThreadMessageRequest{ThreadTokenExpiresAt: at(30 * time.Minute)}, true},
		{"no request", nil, true},
	}
	for _, c := range cases {
		tok, err := s.ReissueThreadToken(c.req, p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (tok != "") != c.fresh {
			t.Errorf("%s: token %q, want fresh=%v", c.name, tok, c.fresh)
		}
	}
}
