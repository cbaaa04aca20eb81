package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MinRSABits is the smallest RSA modulus ECB accepts or generates (RFC 7518 §3.3).
const MinRSABits = 2048

// GenerateRSAKey returns a new RSA key for signing RS256 tokens.
func GenerateRSAKey(bits int) (*rsa.PrivateKey, error) {
	if bits < MinRSABits {
		return nil, fmt.Errorf("auth: an RSA key needs at least %d bits, not %d", MinRSABits, bits)
	}
	return rsa.GenerateKey(rand.Reader, bits)
}

// EncodePrivateKeyPEM encodes an RSA, ECDSA or Ed25519 private key as a
// PKCS #8 "PRIVATE KEY" block, the form every JWT library reads.
func EncodePrivateKeyPEM(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("auth: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" block, the
// form Config.PublicKeyFile reads.
func EncodePublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// JWKS returns a JWK Set (RFC 7517) holding pub alone, marked for signature
// use with the algorithm ECB verifies it with. An empty kid means KeyID(pub).
func JWKS(kid string, pub crypto.PublicKey) ([]byte, error) {
	k, err := toJWK(pub)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		kid = k.thumbprint()
	}
	k.Kid, k.Use, k.Alg = kid, "sig", algFor(pub)
	return json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{k}})
}

// KeyID returns the RFC 7638 JWK thumbprint of pub (SHA-256, base64url), a
// kid that every party can compute from the key alone. It returns "" for a
// key ECB cannot verify with.
func KeyID(pub crypto.PublicKey) string {
	k, err := toJWK(pub)
	if err != nil {
		return ""
	}
	return k.thumbprint()
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Crv string `json:"crv,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

var b64 = base64.RawURLEncoding

func toJWK(pub crypto.PublicKey) (jwk, error) {
	pub, err := checkPublicKey(pub)
	if err != nil {
		return jwk{}, fmt.Errorf("auth: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return jwk{Kty: "RSA", N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		p, err := k.Bytes() // 0x04 || X || Y, each 32 bytes on P-256
		if err != nil {
			return jwk{}, fmt.Errorf("auth: %w", err)
		}
		return jwk{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(p[1:33]), Y: b64.EncodeToString(p[33:])}, nil
	default: // checkPublicKey leaves only ed25519.PublicKey
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k.(ed25519.PublicKey))}, nil
	}
}

// thumbprint hashes the required members in lexicographic order (RFC 7638
// §3.2); base64url values need no JSON escaping.
func (k jwk) thumbprint() string {
	var canonical string
	switch k.Kty {
	case "RSA":
		canonical = `{"e":"` + k.E + `","kty":"RSA","n":"` + k.N + `"}`
	case "EC":
		canonical = `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	default:
		canonical = `{"crv":"` + k.Crv + `","kty":"OKP","x":"` + k.X + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// checkPublicKey returns pub if ECB can verify with it, else an error
// saying why (unprefixed: callers name the source). Only the key shapes of
// RS256, ES256 and EdDSA pass.
func checkPublicKey(pub crypto.PublicKey) (crypto.PublicKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, errors.New("empty RSA key")
		}
		if n := k.N.BitLen(); n < MinRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits; at least %d are needed", n, MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return nil, errors.New("the EC key is not on curve P-256 (the only curve of ES256)")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("the Ed25519 key has the wrong size")
		}
	case crypto.Signer:
		return nil, fmt.Errorf("%T is a private key; ECB needs only the public key", pub)
	default:
		return nil, fmt.Errorf("unsupported key type %T (expected RSA, EC P-256 or Ed25519)", pub)
	}
	return pub, nil
}

// algFor names the one algorithm a key checked by checkPublicKey verifies.
func algFor(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return AlgRS256
	case *ecdsa.PublicKey:
		return AlgES256
	case ed25519.PublicKey:
		return AlgEdDSA
	}
	return ""
}

// kindOf names a checked key for error messages.
func kindOf(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "an RSA"
	case *ecdsa.PublicKey:
		return "an EC P-256"
	default:
		return "an Ed25519"
	}
}

// parsePublicKeysPEM reads every public key of a PEM document. A private key
// is refused outright: ECB must never hold one (it would let ECB mint tokens).
func parsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, errors.New("holds a private key; give ECB only the public key (openssl pkey -pubout)")
			}
			continue // e.g. "EC PARAMETERS" from openssl ecparam
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		if pub, err = checkPublicKey(pub); err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or certificate found")
	}
	return keys, nil
}
