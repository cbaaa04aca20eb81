package config_test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ecbridge/ecb/internal/config"
)

const exampleFile = "../../ecb.example.yaml"

// yamlKeys lists the dotted keys a YAML document sets, a sequence's items
// as key[] (support.workgroups[].hours.timezone).
func yamlKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			yamlKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := prefix + n.Content[i].Value
			out[key] = true
			yamlKeys(n.Content[i+1], key+".", out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			yamlKeys(c, strings.TrimSuffix(prefix, ".")+"[].", out)
		}
	}
}

// documented reads docs/configuration.md's settings table: key → default cell.
func documented(tb testing.TB) map[string]string {
	tb.Helper()
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		tb.Fatal(err)
	}
	keys := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| ([^|]*) \\|").FindAllSubmatch(doc, -1) {
		keys[string(m[1])] = string(m[2])
	}
	if len(keys) < len(config.Keys()) {
		tb.Fatalf("found %d keys in docs/configuration.md's table, fewer than the %d settings", len(keys), len(config.Keys()))
	}
	return keys
}

// field returns the value of a dotted key of c.
func field(c *config.Config, key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		for i := range v.NumField() {
			if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == part {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}

// TestExampleConfig: ecb.example.yaml loads through the real loader, sets
// every documented key, and the value it gives a key is that key's default
// (except the keys an installation has to choose).
func TestExampleConfig(t *testing.T) {
	secret := strings.Repeat("s", 32)
	cfg, err := config.Load(exampleFile, []string{"ECB_BACKEND_SECRET=" + secret}, nil)
	if err != nil {
		t.Fatalf("%s does not load: %v", exampleFile, err)
	}
	raw, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	yamlKeys(&doc, "", set)
	docs := documented(t)
	for k := range docs {
		if !set[k] {
			t.Errorf("%s does not set %s (docs/configuration.md documents it)", exampleFile, k)
		}
	}
	for _, k := range config.Keys() {
		if !set[k] {
			t.Errorf("%s does not set %s", exampleFile, k)
		}
	}

	// Each value is the default: the one docs/configuration.md states, and
	// the one config.SetDefaults fills in where it does.
	chosen := map[string]bool{ // an example value, not the default
		"auth.publicKeyFile": true, "auth.audience": true, "backend.url": true, "backend.secret": true, "support.workgroups": true,
	}
	same := func(a, b reflect.Value) bool {
		if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
			return true // [] in the file, nil by default: the same setting
		}
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	var defaults config.Config
	defaults.SetDefaults()
	for _, k := range config.Keys() {
		if chosen[k] {
			continue
		}
		got := field(cfg, k)
		if d := field(&defaults, k); !d.IsZero() && !same(got, d) {
			t.Errorf("%s sets %s to %v; its default is %v", exampleFile, k, got.Interface(), d.Interface())
		}
		cell := docs[k]
		var fromDoc config.Config
		switch {
		case strings.HasPrefix(cell, "empty"), strings.HasPrefix(cell, "none"), cell == "—": // unset
		case strings.HasPrefix(cell, "`"):
			text := strings.Trim(strings.Split(cell, "`")[1], "[]")
			if err := config.Set(&fromDoc, k, text); err != nil {
				t.Errorf("docs/configuration.md's default of %s: %v", k, err)
				continue
			}
		default:
			t.Errorf("docs/configuration.md's default of %s is %q: neither a value nor empty", k, cell)
			continue
		}
		if want := field(&fromDoc, k); !same(got, want) {
			t.Errorf("%s sets %s to %v; docs/configuration.md says its default is %s", exampleFile, k, got.Interface(), cell)
		}
	}
	if cfg.Backend.Secret != secret {
		t.Errorf("ECB_BACKEND_SECRET did not reach backend.secret")
	}
	if wgs, err := cfg.Support.Resolve(); err != nil || len(wgs) != 1 || wgs[0].Hours == nil || len(wgs[0].Queues) != 2 ||
		wgs[0].Queues[0].Match["topic"] != "billing" || wgs[0].Queues[0].Agents[0] != "agent2" {
		t.Errorf("the example workgroup: %+v, %v", wgs, err)
	}
}
