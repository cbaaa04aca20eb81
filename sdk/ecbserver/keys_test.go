package ecbserver

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePEM(tb testing.TB, blocks ...*pem.Block) string {
	tb.Helper()
	var b strings.Builder
	for _, bl := range blocks {
		b.Write(pem.EncodeToMemory(bl))
	}
	p := filepath.Join(tb.TempDir(), "key.pem")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestLoadPrivateKeyPEM(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	rsaKey := keys["RS256"].(*rsa.PrivateKey)
	ecKey := keys["ES256"].(*ecdsa.PrivateKey)

	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		blocks []*pem.Block
		alg    string
	}{
		{"pkcs8 rsa", []*pem.Block{{Type: "PRIVATE KEY", Bytes: pkcs8(rsaKey)}}, "RS256"},
		{"pkcs1 rsa", []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}}, "RS256"},
		{"pkcs8 ec", []*pem.Block{{Type: "PRIVATE KEY", Bytes: pkcs8(ecKey)}}, "ES256"},
		// openssl ecparam -genkey writes the parameters first.
		{"sec1 ec after parameters", []*pem.Block{{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}},
			{Type: "EC PRIVATE KEY", Bytes: sec1}}, "ES256"},
		{"pkcs8 ed25519", []*pem.Block{{Type: "PRIVATE KEY", Bytes: pkcs8(keys["EdDSA"])}}, "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := LoadPrivateKeyPEM(writePEM(t, tt.blocks...))
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewTokenSigner(key, SignerOptions{Audience: "ecb-test"})
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != tt.alg {
				t.Fatalf("alg %s, want %s", s.Algorithm(), tt.alg)
			}
		})
	}
}

func TestLoadPrivateKeyPEMErrors(t *testing.T) {
	t.Parallel()
	if _, err := LoadPrivateKeyPEM(filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for name, blocks := range map[string][]*pem.Block{
		"no key":    {{Type: "CERTIFICATE", Bytes: []byte{1}}},
		"garbage":   {{Type: "PRIVATE KEY", Bytes: []byte("nope")}},
		"encrypted": {{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}},
	} {
		if _, err := LoadPrivateKeyPEM(writePEM(t, blocks...)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParsePrivateKeyPEM([]byte("not pem at all")); err == nil {
		t.Error("non-PEM input accepted")
	}
}
