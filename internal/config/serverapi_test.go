package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/config"
)

func base(tb testing.TB) []string {
	tb.Helper()
	return []string{"ECB_AUTH_PUBLIC_KEY_FILE=" + writeKey(tb), "ECB_BACKEND_URL=http://b/ecb/v1", "ECB_BACKEND_SECRET=" + strings.Repeat("x", 40)}
}

func TestServerAPIKeysFromEnvFileAndFlags(t *testing.T) {
	secret := strings.Repeat("k", 40)
	env := append(base(t), `ECB_SERVER_API_KEYS=[{"name":"backend","key":"`+secret+`","scopes":["*"]}]`)
	cfg, err := config.Load("", env, []string{"limits.opsPerSecondPerUser=5", "http.trustedProxies=10.0.0.0/8,::1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ServerAPI.Keys) != 1 || cfg.ServerAPI.Keys[0].Key != secret || cfg.ServerAPI.Keys[0].Scopes[0] != "*" || !cfg.ServerAPI.Enabled() {
		t.Fatalf("keys %v", cfg.ServerAPI.Keys)
	}
	if cfg.Limits.OpsPerSecondPerUser != 5 || cfg.Limits.OpsBurstPerUser != 40 || cfg.ServerAPI.StateTTL.Hours() != 24 {
		t.Fatalf("limits %+v, serverApi %+v", cfg.Limits, cfg.ServerAPI.StateTTL)
	}

	file := filepath.Join(t.TempDir(), "ecb.yaml")
	yaml := "serverApi:\n  listen: 127.0.0.1:9001\n  keys:\n    - name: ops\n      key: " + secret + "\n      scopes: [presence:read, access:write]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = config.Load(file, base(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.ServerAPI.Keys; len(k) != 1 || k[0].Name != "ops" || len(k[0].Scopes) != 2 || cfg.ServerAPI.Listen != "127.0.0.1:9001" {
		t.Fatalf("from YAML: %+v", cfg.ServerAPI)
	}
}

func TestServerAPIKeyErrorsNeverQuoteTheKey(t *testing.T) {
	secret := "short-secret-value"
	cases := []struct {
		name, keys string
		want       []string
	}{
		{"too short", `[{name: a, key: ` + secret + `, scopes: ["*"]}]`, []string{"serverApi.keys[0] (a).key", "too short"}},
		{"bad scope", `[{name: a, key: ` + secret + strings.Repeat("x", 32) + `, scopes: [everything]}]`, []string{"serverApi.keys[0] (a).scopes"}},
		{"no name", `[{key: ` + secret + strings.Repeat("x", 32) + `, scopes: ["*"]}]`, []string{"serverApi.keys[0].name"}},
		{"not a list", `{` + secret, []string{"serverApi.keys", "YAML or JSON list"}},
		{"unknown field", `[{name: a, secret: ` + secret + `}]`, []string{"serverApi.keys"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("", base(t), []string{"serverApi.keys=" + tc.keys})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the key:\n%v", err)
			}
		})
	}
	if _, err := config.Load("", base(t), []string{"serverApi.listen=127.0.0.1:8080"}); err == nil || !strings.Contains(err.Error(), "serverApi.listen") {
		t.Errorf("serverApi.listen equal to listen: %v", err)
	}
	if _, err := config.Load("", base(t), []string{"http.trustedProxies=proxy.local"}); err == nil || !strings.Contains(err.Error(), "http.trustedProxies") {
		t.Errorf("a host name as trusted proxy: %v", err)
	}
	if _, err := config.Load("", base(t), []string{"limits.opsPerSecondPerUser=-1"}); err == nil || !strings.Contains(err.Error(), "limits.opsBurstPerUser") {
		t.Errorf("a rate off with its burst on: %v", err)
	}
}
