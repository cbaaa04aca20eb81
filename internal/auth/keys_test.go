package auth_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

// The worked example of RFC 7638 §3.1.
func TestKeyIDRFC7638(t *testing.T) {
	t.Parallel()
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, want := auth.KeyID(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	k := keys()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, pub := range []crypto.PublicKey{k.rsa.Public(), k.rsa2.Public(), k.ec.Public(), k.ed.Public()} {
		id := auth.KeyID(pub)
		if len(id) != 43 || seen[id] || auth.KeyID(pub) != id {
			t.Fatalf("KeyID(%T) = %q", pub, id)
		}
		seen[id] = true
	}
	for _, bad := range []crypto.PublicKey{p384.Public(), k.rsa, "x", nil} {
		if id := auth.KeyID(bad); id != "" {
			t.Fatalf("KeyID(%T) = %q, want empty", bad, id)
		}
	}
}

func TestPEMRoundTrip(t *testing.T) {
	t.Parallel()
	k := keys()
	for _, c := range []struct {
		priv crypto.Signer
	}{{k.rsa}, {k.ec}, {k.ed}} {
		privPEM, err := auth.EncodePrivateKeyPEM(c.priv)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(privPEM)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("private PEM of %T: %q", c.priv, privPEM)
		}
		back, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !back.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.priv.Public()) {
			t.Fatalf("%T private key changed in the round trip", c.priv)
		}

		pubPEM, err := auth.EncodePublicKeyPEM(c.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		block, _ = pem.Decode(pubPEM)
		if block == nil || block.Type != "PUBLIC KEY" {
			t.Fatalf("public PEM of %T: %q", c.priv, pubPEM)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.priv.Public()) {
			t.Fatalf("%T public key changed in the round trip", c.priv)
		}
	}
	if _, err := auth.EncodePrivateKeyPEM("x"); err == nil {
		t.Fatal("EncodePrivateKeyPEM accepted a string")
	}
	if _, err := auth.EncodePublicKeyPEM("x"); err == nil {
		t.Fatal("EncodePublicKeyPEM accepted a string")
	}
}

// JWKS must produce what a standard JWKS client (keyfunc) reads, for every key type.
func TestJWKS(t *testing.T) {
	t.Parallel()
	k := keys()
	for _, c := range []struct {
		alg    string
		method jwt.SigningMethod
		priv   crypto.Signer
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa},
		{"ES256", jwt.SigningMethodES256, k.ec},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed},
	} {
		t.Run(c.alg, func(t *testing.T) {
			t.Parallel()
			doc, err := auth.JWKS("", c.priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			var set struct {
				Keys []map[string]string `json:"keys"`
			}
			if err := json.Unmarshal(doc, &set); err != nil {
				t.Fatal(err)
			}
			kid := auth.KeyID(c.priv.Public())
			if len(set.Keys) != 1 || set.Keys[0]["kid"] != kid || set.Keys[0]["alg"] != c.alg || set.Keys[0]["use"] != "sig" {
				t.Fatalf("JWKS = %s", doc)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := set.Keys[0][private]; ok {
					t.Fatalf("JWKS holds private member %q: %s", private, doc)
				}
			}
			kf, err := keyfunc.NewJWKSetJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			tok := sign(t, c.method, c.priv, kid, userClaims())
			if _, err := jwt.Parse(tok, kf.Keyfunc, jwt.WithValidMethods([]string{c.alg})); err != nil {
				t.Fatalf("keyfunc could not verify with the JWKS: %v", err)
			}
		})
	}
	doc, err := auth.JWKS("my-kid", k.rsa.Public())
	if err != nil || !json.Valid(doc) || !bytes.Contains(doc, []byte(`"kid":"my-kid"`)) {
		t.Fatalf("JWKS with a kid = %s, %v", doc, err)
	}
	if _, err := auth.JWKS("x", k.rsa); err == nil {
		t.Fatal("JWKS accepted a private key")
	}
}
