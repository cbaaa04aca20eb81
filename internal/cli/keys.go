package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ecbridge/ecb/internal/auth"
)

func init() {
	register(Command{
		Name:  "keys",
		Usage: "generate [--out DIR] [--bits 2048] [--force]",
		Short: "generate an RS256 key pair (PEM) and its JWKS, plus a backend secret",
		Run:   runKeys,
	})
}

// Files written by `ecb keys generate` (and by `ecb demo` on first start).
const (
	privateKeyFile = "private.pem"
	publicKeyFile  = "public.pem"
	jwksFile       = "jwks.json"
	secretFile     = "backend-secret"
)

func runKeys(_ context.Context, args []string, env Env) (int, error) {
	if len(args) == 0 || args[0] != "generate" {
		return 2, fmt.Errorf("%w: the only subcommand is generate", errUsage)
	}
	fs := newFlags("keys generate", env)
	out := fs.String("out", ".", "directory to write private.pem, public.pem, jwks.json and backend-secret into")
	bits := fs.Int("bits", 2048, "RSA key size")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := fs.Parse(args[1:]); err != nil {
		return 2, err
	}
	if !*force {
		for _, f := range []string{privateKeyFile, publicKeyFile, jwksFile, secretFile} {
			if _, err := os.Stat(filepath.Join(*out, f)); err == nil {
				return 1, fmt.Errorf("%s exists; use --force to overwrite", filepath.Join(*out, f))
			}
		}
	}
	kid, err := generateKeys(*out, *bits)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(env.Stdout, "wrote %s (keep it on the backend only), %s and %s (kid %s) for ECB, and %s (the HMAC secret both sides share, 64 hex characters without a newline) in %s\n",
		privateKeyFile, publicKeyFile, jwksFile, kid, secretFile, *out)
	return 0, nil
}

// generateKeys writes a new key pair, its JWKS and a random backend secret into dir.
func generateKeys(dir string, bits int) (kid string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	key, err := auth.GenerateRSAKey(bits)
	if err != nil {
		return "", err
	}
	priv, err := auth.EncodePrivateKeyPEM(key)
	if err != nil {
		return "", err
	}
	pub, err := auth.EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		return "", err
	}
	kid = auth.KeyID(&key.PublicKey)
	jwks, err := auth.JWKS(kid, &key.PublicKey)
	if err != nil {
		return "", err
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	return kid, errors.Join(
		os.WriteFile(filepath.Join(dir, privateKeyFile), priv, 0o600),
		os.WriteFile(filepath.Join(dir, publicKeyFile), pub, 0o644),
		os.WriteFile(filepath.Join(dir, jwksFile), jwks, 0o644),
		// No trailing newline: a backend that reads the file as it is gets the
		// same secret as ECB (`$(cat backend-secret)` in a shell does too).
		os.WriteFile(filepath.Join(dir, secretFile), []byte(hex.EncodeToString(secret[:])), 0o600),
	)
}
