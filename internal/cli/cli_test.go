package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/cli"
)

func run(tb testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errb bytes.Buffer
	code = cli.MainEnv(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errb, Getenv: env})
	return code, out.String(), errb.String()
}

func TestKeysGenerateThenToken(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, nil, "keys", "generate", "--out", dir); code != 0 {
		t.Fatalf("keys generate: %d %s", code, errs)
	}
	for _, f := range []string{"private.pem", "public.pem", "jwks.json", "backend-secret"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("missing %s", f)
		}
	}
	// The secret is the file's exact bytes: a backend that reads it without
	// trimming must get what ECB gets.
	if secret, _ := os.ReadFile(filepath.Join(dir, "backend-secret")); !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(secret) {
		t.Errorf("backend-secret = %q, want 64 hex characters and nothing else", secret)
	}
	var jwks struct {
		Keys []struct{ Kty, Kid, Alg string } `json:"keys"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
	if err := json.Unmarshal(raw, &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Kid == "" {
		t.Fatalf("jwks.json = %s (%v)", raw, err)
	}
	if code, _, errs := run(t, nil, "keys", "generate", "--out", dir); code == 0 || !strings.Contains(errs, "--force") {
		t.Fatalf("overwriting without --force: %d %s", code, errs)
	}
	code, out, errs := run(t, nil, "token", "--key", filepath.Join(dir, "private.pem"), "--aud", "ecb", "--user", "alice")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("token: %d %q %s", code, out, errs)
	}
	if code, _, _ := run(t, nil, "token", "--key", filepath.Join(dir, "private.pem")); code != 2 {
		t.Fatalf("token without --aud: exit %d, want 2", code)
	}
}

func TestServeRefusesABadConfigurationNamingTheKey(t *testing.T) {
	code, _, errs := run(t, []string{"ECB_BACKEND_URL=not a url"}, "serve")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, key := range []string{"backend.url", "backend.secret", "auth"} {
		if !strings.Contains(errs, key) {
			t.Errorf("the error does not name %s:\n%s", key, errs)
		}
	}
}

// TestConfigurationDocQuotesTheRealErrors: docs/configuration.md shows what
// `ecb serve` prints with nothing configured, word for word.
func TestConfigurationDocQuotesTheRealErrors(t *testing.T) {
	code, _, errs := run(t, nil, "serve")
	if code != 2 || !strings.Contains(errs, "ecb keys generate") {
		t.Fatalf("exit %d, want 2 and a pointer at ecb keys generate:\n%s", code, errs)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```\n"+errs+"```\n") {
		t.Errorf("docs/configuration.md does not quote the errors of ecb serve exactly:\n%s", errs)
	}
}

func TestHelpVersionAndUnknown(t *testing.T) {
	if code, out, _ := run(t, nil, "help"); code != 0 || !strings.Contains(out, "demo") || !strings.Contains(out, "serve") {
		t.Errorf("help: %d %s", code, out)
	}
	if code, out, _ := run(t, nil, "version"); code != 0 || !strings.Contains(out, "client protocol 1") {
		t.Errorf("version: %d %s", code, out)
	}
	if code, _, errs := run(t, nil, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown: %d %s", code, errs)
	}
}
