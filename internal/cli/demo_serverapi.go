package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// serverAPIKeyFile holds the demo's Server API key, generated on first start.
const serverAPIKeyFile = "server-api-key"

// ensureServerAPIKey returns the demo's Server API key, generating it (and
// writing it to <dir>/server-api-key, mode 0600) when there is none yet.
func ensureServerAPIKey(dir string) (string, error) {
	path := filepath.Join(dir, serverAPIKeyFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		if key := strings.TrimSpace(string(raw)); len(key) >= 32 {
			return key, nil
		}
		return "", fmt.Errorf("%s: shorter than 32 characters; delete it to get a new key", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil { // no newline, as backend-secret
		return "", err
	}
	return key, nil
}

// demoServerAPIKeys is the serverApi.keys setting of the demo: one key with
// every scope.
func demoServerAPIKeys(key string) string {
	out, _ := json.Marshal([]map[string]any{{"name": "demo", "key": key, "scopes": []string{"*"}}}) // strings always marshal
	return string(out)
}
