package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/config"
)

func writeKey(tb testing.TB) string {
	tb.Helper()
	// A real PEM public key is needed by auth validation; any RSA key works.
	pem := `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc
mwIDAQAB
-----END PUBLIC KEY-----
`
	p := filepath.Join(tb.TempDir(), "public.pem")
	if err := os.WriteFile(p, []byte(pem), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestLoadLayersFileEnvAndFlags(t *testing.T) {
	key := writeKey(t)
	file := filepath.Join(t.TempDir(), "ecb.yaml")
	yaml := "listen: 127.0.0.1:9000\nauth:\n  publicKeyFile: " + key + "\nbackend:\n  url: http://backend.example/ecb/v1\n  timeout: 2s\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"ECB_BACKEND_SECRET=" + strings.Repeat("s", 32), "ECB_BACKEND_TIMEOUT=3s", "PATH=/bin", "ECB_HTTP_ALLOWED_ORIGINS=https://a.example, https://b.example"}
	cfg, err := config.Load(file, env, []string{"backend.timeout=4s", "operations.enforceMembership=false"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9000" || cfg.Backend.Timeout != 4*time.Second || cfg.Backend.Secret != strings.Repeat("s", 32) {
		t.Errorf("layering wrong: listen %s timeout %s", cfg.Listen, cfg.Backend.Timeout)
	}
	if len(cfg.HTTP.AllowedOrigins) != 2 || cfg.HTTP.AllowedOrigins[1] != "https://b.example" {
		t.Errorf("allowedOrigins = %q", cfg.HTTP.AllowedOrigins)
	}
	if *cfg.Operations.EnforceMembership {
		t.Error("enforceMembership=false was not applied")
	}
	if cfg.SocketIO.PingInterval != 25*time.Second || cfg.Operations.MaxPageSize != 100 {
		t.Error("defaults not filled in")
	}
}

func TestEnforceMembershipDefaultsOn(t *testing.T) {
	cfg, err := config.Load("", []string{"ECB_AUTH_PUBLIC_KEY_FILE=" + writeKey(t), "ECB_BACKEND_URL=http://b/ecb/v1", "ECB_BACKEND_SECRET=" + strings.Repeat("x", 40)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !*cfg.Operations.EnforceMembership {
		t.Error("enforceMembership must default to true")
	}
	if !*cfg.SocketIO.Netpoll {
		t.Error("socketio.netpoll must default to true")
	}
	cfg, err = config.Load("", []string{"ECB_AUTH_PUBLIC_KEY_FILE=" + writeKey(t), "ECB_BACKEND_URL=http://b/ecb/v1", "ECB_BACKEND_SECRET=" + strings.Repeat("x", 40), "ECB_SOCKETIO_NETPOLL=false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.SocketIO.Netpoll {
		t.Error("ECB_SOCKETIO_NETPOLL=false must turn socketio.netpoll off")
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name     string
		env      []string
		sets     []string
		wantKeys []string
	}{
		{"nothing set", nil, nil, []string{"backend.url", "backend.secret", "auth"}},
		{"bad values", []string{"ECB_BACKEND_URL=ftp://x", "ECB_BACKEND_SECRET=short"}, []string{"listen=nohostport", "log.level=loud", "http.allowedOrigins=example.com"},
			[]string{"backend.url", "backend.secret", "listen", "log.level", "http.allowedOrigins"}},
		{"unknown env", []string{"ECB_BACKEND_URLL=x"}, nil, []string{"ECB_BACKEND_URLL"}},
		{"bad duration", nil, []string{"backend.timeout=5 seconds"}, []string{"backend.timeout"}},
		{"bad number", nil, []string{"hub.historySize=many"}, []string{"hub.historySize"}},
		{"unknown flag key", nil, []string{"backend.nope=1"}, []string{"backend.nope"}},
		{"not key=value", nil, []string{"listen"}, []string{"key=value"}},
		{"deadAfter too short", nil, []string{"cluster.heartbeat=3s", "cluster.deadAfter=5s"}, []string{"cluster.deadAfter"}},
		{"writeDelay too long", nil, []string{"socketio.writeDelay=2s"}, []string{"socketio.writeDelay"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("", tc.env, tc.sets)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, k := range tc.wantKeys {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error does not name %q:\n%v", k, err)
				}
			}
		})
	}
}

func TestUnknownYAMLKeyIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ecb.yaml")
	_ = os.WriteFile(file, []byte("backend:\n  ulr: http://x\n"), 0o600)
	if _, err := config.Load(file, nil, nil); err == nil || !strings.Contains(err.Error(), "ulr") {
		t.Fatalf("typo in YAML: %v", err)
	}
}

// TestEveryKeyIsDocumented keeps docs/configuration.md in step with the code.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not document %s", k)
		}
	}
}

func FuzzSet(f *testing.F) {
	for _, s := range []string{"listen=1.2.3.4:5", "backend.timeout=3s", "http.allowedOrigins=a,b", "operations.enforceMembership=true", "hub.historySize=-1", "x.y.z=1", "=", "auth.algorithms="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		var c config.Config
		key, value, _ := strings.Cut(kv, "=")
		_ = config.Set(&c, key, value) // must never panic
		c.SetDefaults()
		_ = c.Validate()
	})
}
