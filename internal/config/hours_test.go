package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/config"
)

// TestWorkgroupHoursFromYAML: support.workgroups[i].hours is read from the
// file, and its errors name the key.
func TestWorkgroupHoursFromYAML(t *testing.T) {
	env := []string{"ECB_AUTH_PUBLIC_KEY_FILE=" + writeKey(t), "ECB_BACKEND_URL=http://b/ecb/v1", "ECB_BACKEND_SECRET=" + strings.Repeat("x", 40)}
	load := func(yaml string) (*config.Config, error) {
		file := filepath.Join(t.TempDir(), "ecb.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(file, env, nil)
	}
	cfg, err := load(`
support:
  workgroups:
    - name: support
      hours:
        timezone: Europe/Berlin
        weekly:
          mon: ["09:00-12:00", "13:00-17:30"]
          tue: ["09:00-17:00"]
        closedDates: ["2026-12-25"]
`)
	if err != nil {
		t.Fatal(err)
	}
	wgs, err := cfg.Support.Resolve()
	if err != nil || len(wgs) != 1 || wgs[0].Hours == nil || wgs[0].Hours.Location().String() != "Europe/Berlin" {
		t.Fatalf("%+v %v", wgs, err)
	}
	_, err = load(`
support:
  workgroups:
    - name: support
      hours:
        timezone: Europe/Nowhere
        weekly:
          mon: ["12:00-09:00"]
`)
	for _, want := range []string{"support.workgroups[0].hours.timezone", "support.workgroups[0].hours.weekly.mon[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := load("support:\n  workgroups:\n    - name: s\n      hours:\n        weekly: {mon: [\"09:00-10:00\"]}\n        holidays: []\n"); err == nil || !strings.Contains(err.Error(), "holidays") {
		t.Errorf("unknown hours key: %v", err)
	}
}
