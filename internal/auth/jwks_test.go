package auth_test

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves whatever JWK Set was last given to serve, and counts fetches.
type jwksServer struct {
	*httptest.Server
	doc     atomic.Pointer[[]byte]
	status  atomic.Int32
	fetches atomic.Int32
}

func newJWKSServer(tb testing.TB) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if st := int(s.status.Load()); st != http.StatusOK {
			http.Error(w, "down", st)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.doc.Load())
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(tb testing.TB, kid string, pub crypto.PublicKey) {
	tb.Helper()
	doc, err := auth.JWKS(kid, pub)
	if err != nil {
		tb.Fatal(err)
	}
	s.doc.Store(&doc)
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	k := keys()
	srv := newJWKSServer(t)
	srv.serve(t, "key-1", k.rsa.Public())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := auth.NewVerifier(ctx, auth.Config{JWKSURL: srv.URL + "/jwks.json", Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	verify := func(key crypto.Signer, kid string) error {
		_, err := v.VerifyUser(sign(t, jwt.SigningMethodRS256, key, kid, userClaims()), "")
		return err
	}
	if err := verify(k.rsa, "key-1"); err != nil {
		t.Fatalf("key-1: %v", err)
	}
	if err := verify(k.rsa, ""); err != nil {
		t.Fatalf("no kid: %v", err)
	}
	if err := verify(k.rsa2, "key-1"); !errors.Is(err, auth.ErrSignature) {
		t.Fatalf("key-2 under kid key-1: %v, want ErrSignature", err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for known kids, want 1: verification must stay local", n)
	}

	// The backend rotates: it now publishes key-2 only and signs with it.
	srv.serve(t, "key-2", k.rsa2.Public())
	if err := verify(k.rsa2, "key-2"); err != nil {
		t.Fatalf("key-2 after rotation: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after rotation, want 2 (one refetch for the unknown kid)", n)
	}
	// The refetch replaced the set, so the retired key is gone at once.
	if err := verify(k.rsa, "key-1"); !errors.Is(err, auth.ErrSignature) {
		t.Fatalf("retired key-1: %v, want ErrSignature", err)
	}

	// Made-up kids neither hang the request nor hammer the key server.
	start := time.Now()
	for i := range 20 {
		if err := verify(k.rsa2, "made-up-"+string(rune('a'+i))); !errors.Is(err, auth.ErrSignature) {
			t.Fatalf("made-up kid: %v, want ErrSignature", err)
		}
	}
	// A request that waited for a refetch would wait up to 5s, so 20 of them
	// would take 100s; the bound only tells "hung" from "slow machine".
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("20 unknown kids took %s: requests waited for refetches", d)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after made-up kids, want still 2 (rate limit)", n)
	}

	// After ctx ends, the cached keys keep working.
	cancel()
	if err := verify(k.rsa2, "key-2"); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestJWKSIgnoresKeysOfOtherAlgorithms(t *testing.T) {
	t.Parallel()
	k := keys()
	srv := newJWKSServer(t)
	srv.serve(t, "ec", k.ec.Public())
	v, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL, Algorithms: []string{"RS256", "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyUser(sign(t, jwt.SigningMethodES256, k.ec, "ec", userClaims(del("aud"))), ""); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	// An RS256 token pointing at the EC key gets no key, not a type confusion.
	if _, err := v.VerifyUser(sign(t, jwt.SigningMethodRS256, k.rsa, "ec", userClaims()), ""); !errors.Is(err, auth.ErrSignature) {
		t.Fatalf("RS256 with kid of an EC key: %v, want ErrSignature", err)
	}
}

func TestJWKSStartFailures(t *testing.T) {
	t.Parallel()
	k := keys()
	t.Run("server error", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t)
		srv.status.Store(http.StatusInternalServerError)
		_, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL})
		if err == nil || !strings.HasPrefix(err.Error(), "auth.jwksURL: ") {
			t.Fatalf("NewVerifier: %v", err)
		}
	})
	t.Run("no usable key", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t)
		srv.serve(t, "ed", k.ed.Public())
		_, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL})
		if err == nil || !strings.Contains(err.Error(), "no key usable with [RS256]") {
			t.Fatalf("NewVerifier: %v", err)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t)
		doc := []byte("<html>")
		srv.doc.Store(&doc)
		if _, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL}); err == nil {
			t.Fatal("NewVerifier accepted an HTML JWKS")
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t)
		srv.Close()
		if _, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL}); err == nil {
			t.Fatal("NewVerifier accepted an unreachable JWKS")
		}
	})
}

// With a PEM file and a JWKS both configured, keys from either verify.
func TestPEMAndJWKSTogether(t *testing.T) {
	t.Parallel()
	k := keys()
	srv := newJWKSServer(t)
	srv.serve(t, "remote", k.rsa2.Public())
	pemData, err := auth.EncodePublicKeyPEM(k.rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL, PublicKeyFile: writeFile(t, "k.pem", pemData)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key crypto.Signer
		kid string
	}{{k.rsa, ""}, {k.rsa, "whatever"}, {k.rsa2, "remote"}, {k.rsa2, ""}} {
		if _, err := v.VerifyUser(sign(t, jwt.SigningMethodRS256, c.key, c.kid, userClaims(del("aud"))), ""); err != nil {
			t.Fatalf("kid %q: %v", c.kid, err)
		}
	}
}
