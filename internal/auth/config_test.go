package auth_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  auth.Config
		want []string // substrings of the error; none means valid
	}{
		{"pem", auth.Config{PublicKeyFile: "k.pem"}, nil},
		{"jwks https", auth.Config{JWKSURL: "https://backend.example.com/.well-known/jwks.json"}, nil},
		{"jwks http loopback", auth.Config{JWKSURL: "http://127.0.0.1:8081/jwks"}, nil},
		{"jwks http localhost", auth.Config{JWKSURL: "http://localhost/jwks"}, nil},
		{"jwks http ::1", auth.Config{JWKSURL: "http://[::1]:9/jwks"}, nil},
		{"jwks http allowed", auth.Config{JWKSURL: "http://backend.internal/jwks", AllowInsecureJWKS: true}, nil},
		{"secret", auth.Config{Algorithms: []string{"HS256"}, SharedSecret: testSecret}, nil},
		{"all", auth.Config{Algorithms: []string{"RS256", "ES256", "EdDSA", "HS256"}, SharedSecret: testSecret, PublicKeyFile: "k.pem", JWKSURL: "https://x/jwks", Leeway: time.Minute, JWKSRefresh: time.Minute}, nil},
		{"zero", auth.Config{}, []string{"auth: no key source"}},
		{"unsupported alg", auth.Config{PublicKeyFile: "k.pem", Algorithms: []string{"RS256", "HS384"}},
			[]string{`auth.algorithms: "HS384" is not supported (expected RS256, ES256, EdDSA, HS256)`}},
		{"alg none", auth.Config{PublicKeyFile: "k.pem", Algorithms: []string{"none"}}, []string{`auth.algorithms: "none" is not supported`}},
		{"alg lower case", auth.Config{PublicKeyFile: "k.pem", Algorithms: []string{"rs256"}}, []string{`"rs256" is not supported`}},
		{"HS256 without secret", auth.Config{PublicKeyFile: "k.pem", Algorithms: []string{"RS256", "HS256"}}, []string{"auth.algorithms: HS256 is listed but auth.sharedSecret is not set"}},
		{"secret without HS256", auth.Config{PublicKeyFile: "k.pem", SharedSecret: testSecret}, []string{"auth.sharedSecret: is set but HS256 is not listed"}},
		{"short secret", auth.Config{Algorithms: []string{"HS256"}, SharedSecret: "short"}, []string{"auth.sharedSecret: must be at least 32 bytes"}},
		{"RS256 with only a secret", auth.Config{Algorithms: []string{"RS256", "HS256"}, SharedSecret: testSecret}, []string{"auth.algorithms: RS256 needs auth.publicKeyFile or auth.jwksURL"}},
		{"jwks plain http", auth.Config{JWKSURL: "http://backend.example.com/jwks"}, []string{"auth.jwksURL: must be https"}},
		{"jwks ftp", auth.Config{JWKSURL: "ftp://backend.example.com/jwks"}, []string{`auth.jwksURL: scheme must be https, not "ftp"`}},
		{"jwks no host", auth.Config{JWKSURL: "https:///jwks"}, []string{"auth.jwksURL: has no host"}},
		{"jwks relative", auth.Config{JWKSURL: "/jwks"}, []string{"auth.jwksURL: scheme must be https"}},
		{"negative leeway", auth.Config{PublicKeyFile: "k.pem", Leeway: -time.Second}, []string{"auth.leeway: must not be negative"}},
		{"refresh too often", auth.Config{JWKSURL: "https://x/jwks", JWKSRefresh: time.Second}, []string{"auth.jwksRefresh: must be at least 10s"}},
		{"several problems", auth.Config{Algorithms: []string{"HS512"}, Leeway: -1}, []string{"HS512", "auth.leeway", "no key source"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q does not contain %q", err, w)
				}
			}
		})
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewVerifierPublicKeyFile(t *testing.T) {
	t.Parallel()
	k := keys()
	rsaPEM, _ := auth.EncodePublicKeyPEM(k.rsa.Public())
	rsa2PEM, _ := auth.EncodePublicKeyPEM(k.rsa2.Public())
	ecPEM, _ := auth.EncodePublicKeyPEM(k.ec.Public())
	edPEM, _ := auth.EncodePublicKeyPEM(k.ed.Public())
	privPEM, _ := auth.EncodePrivateKeyPEM(k.rsa)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backend"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)} // expired on purpose
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, k.ec.Public(), k.ec)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})

	for _, c := range []struct {
		name    string
		pem     []byte
		algs    []string
		token   string
		wantErr string
	}{
		{name: "RSA PKIX", pem: rsaPEM, token: rs256(t, userClaims())},
		{name: "RSA PKCS1", pem: pkcs1, token: rs256(t, userClaims())},
		{name: "two RSA keys, second signs", pem: append(slices.Clone(rsaPEM), rsa2PEM...), token: sign(t, jwt.SigningMethodRS256, k.rsa2, "", userClaims())},
		{name: "EC", pem: ecPEM, algs: []string{"ES256"}, token: sign(t, jwt.SigningMethodES256, k.ec, "", userClaims())},
		{name: "Ed25519", pem: edPEM, algs: []string{"EdDSA"}, token: sign(t, jwt.SigningMethodEdDSA, k.ed, "", userClaims())},
		{name: "certificate (dates ignored)", pem: certPEM, algs: []string{"ES256"}, token: sign(t, jwt.SigningMethodES256, k.ec, "", userClaims())},
		{name: "EC key but only RS256", pem: ecPEM, wantErr: "verifies ES256, which is not in auth.algorithms"},
		{name: "private key", pem: privPEM, wantErr: "holds a private key"},
		{name: "not PEM", pem: []byte("hello"), wantErr: "no PEM public key"},
		{name: "corrupt block", pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}), wantErr: "PUBLIC KEY block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "key.pem", c.pem)
			v, err := auth.NewVerifier(context.Background(), auth.Config{PublicKeyFile: path, Algorithms: c.algs, Audience: testAudience})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "auth.publicKeyFile: ") {
					t.Fatalf("NewVerifier: %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if _, err := v.VerifyUser(c.token, ""); err != nil {
				t.Fatalf("VerifyUser: %v", err)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := auth.NewVerifier(context.Background(), auth.Config{PublicKeyFile: filepath.Join(t.TempDir(), "nope.pem")})
		if err == nil || !strings.HasPrefix(err.Error(), "auth.publicKeyFile: ") {
			t.Fatalf("NewVerifier: %v", err)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		t.Parallel()
		if _, err := auth.NewVerifier(context.Background(), auth.Config{}); err == nil {
			t.Fatal("NewVerifier accepted a config without keys")
		}
	})
}

func TestNewVerifierFromKeysRefuses(t *testing.T) {
	t.Parallel()
	k := keys()
	small, err := auth.GenerateRSAKey(1024)
	if err == nil || small != nil {
		t.Fatal("GenerateRSAKey(1024) succeeded")
	}
	for _, c := range []struct {
		name string
		cfg  auth.Config
		keys []crypto.PublicKey
		want string
	}{
		{"no key", auth.Config{}, nil, "no key given"},
		{"private key", auth.Config{}, []crypto.PublicKey{k.rsa}, "is a private key"},
		{"unsupported type", auth.Config{}, []crypto.PublicKey{"a string"}, "unsupported key type"},
		{"Ed25519 not allowed", auth.Config{}, []crypto.PublicKey{k.ed.Public()}, "verifies EdDSA"},
		{"bad config", auth.Config{Algorithms: []string{"PS256"}}, []crypto.PublicKey{k.rsa.Public()}, `"PS256" is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewVerifierFromKeys(c.cfg, c.keys...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewVerifierFromKeys: %v, want %q", err, c.want)
			}
		})
	}
	// A secret alone is enough.
	v, err := auth.NewVerifierFromKeys(auth.Config{Algorithms: []string{"HS256"}, SharedSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyUser(sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", userClaims()), ""); err != nil {
		t.Fatal(err)
	}
}
