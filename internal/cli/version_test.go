package cli

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// infoVersion reads info.version of an OpenAPI document of api/.
func infoVersion(tb testing.TB, name string) string {
	tb.Helper()
	raw, err := os.ReadFile("../../api/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Info struct {
			Version string `yaml:"version"`
		} `yaml:"info"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		tb.Fatalf("api/%s: %v", name, err)
	}
	return doc.Info.Version
}

// TestVersionsMatchTheDocuments: what `ecb version` reports is what the
// published documents say.
func TestVersionsMatchTheDocuments(t *testing.T) {
	if v := infoVersion(t, "backend.yaml"); v != ecbserver.ContractFullVersion {
		t.Errorf("api/backend.yaml info.version %q, ecbserver.ContractFullVersion %q", v, ecbserver.ContractFullVersion)
	}
	if major, _, _ := strings.Cut(ecbserver.ContractFullVersion, "."); major != ecbserver.ContractVersion {
		t.Errorf("ecbserver.ContractVersion %q is not the major number of %q", ecbserver.ContractVersion, ecbserver.ContractFullVersion)
	}
	if v := infoVersion(t, "server.yaml"); v != ServerAPIVersion {
		t.Errorf("api/server.yaml info.version %q, ServerAPIVersion %q", v, ServerAPIVersion)
	}
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(doc), "\n"); first != "# ECB client protocol (version "+ProtocolVersion+")" {
		t.Errorf("docs/protocol.md starts with %q, ProtocolVersion is %q", first, ProtocolVersion)
	}
	js, err := os.ReadFile("../../clients/js/src/index.ts")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`PROTOCOL_VERSION = "([0-9.]+)";`).FindSubmatch(js); m == nil || string(m[1]) != ProtocolVersion {
		t.Errorf("clients/js PROTOCOL_VERSION %q, ProtocolVersion %q", m, ProtocolVersion)
	}
	contract, err := os.ReadFile("../../docs/backend-contract.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "(now\n`" + ecbserver.ContractFullVersion + "`"; !bytes.Contains(contract, []byte(want)) {
		t.Errorf("docs/backend-contract.md's Versioning does not say %q", want)
	}
}

func TestVersionCommandPrintsEveryVersion(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.8.7"
	var out bytes.Buffer
	if code := MainEnv(context.Background(), []string{"version"}, Env{Stdout: &out, Stderr: &out}); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{"ecb v9.8.7 ", "client protocol " + ProtocolVersion, "backend contract " + ecbserver.ContractFullVersion, "Server API " + ServerAPIVersion} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ecb version printed %q, without %q", out.String(), want)
		}
	}
}

func TestVersionOf(t *testing.T) {
	tagged := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ecbridge/ecb", Version: "v1.4.0"}}
	devel := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ecbridge/ecb", Version: "(devel)"}}
	for _, tt := range []struct {
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"v2.0.0", tagged, "v2.0.0"}, // the linker's (make release) wins
		{"", tagged, "v1.4.0"},       // go install ...@v1.4.0
		{"", devel, "dev"},
		{"", nil, "dev"},
	} {
		if got := versionOf(tt.linked, tt.bi); got != tt.want {
			t.Errorf("versionOf(%q, %v) = %q, want %q", tt.linked, tt.bi, got, tt.want)
		}
	}
}

// TestReleaseSetsVersion: the symbol `make release` sets with -X is this
// package's Version (a rename would silently leave releases at "dev").
func TestReleaseSetsVersion(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	symbol := reflect.TypeFor[Command]().PkgPath() + ".Version"
	if !bytes.Contains(mk, []byte("-X "+symbol+"=")) {
		t.Errorf("the Makefile's release does not set %s", symbol)
	}
}
