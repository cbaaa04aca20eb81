package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/ecbridge/ecb/internal/discover"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// The versions of the published interfaces, each checked by a test against
// the document it names (version_test.go), so `ecb version` cannot disagree
// with them.
const (
	// ProtocolVersion is the version of the client protocol (docs/protocol.md,
	// PROTOCOL_VERSION of clients/js).
	ProtocolVersion = "1.5"
	// ServerAPIVersion is info.version of api/server.yaml (the Server API).
	ServerAPIVersion = "1.2.0"
)

// Version is the release of this build, set from the git tag by
// `make release` with
//
//	-ldflags "-X github.com/ecbridge/ecb/internal/cli.Version=v1.2.3"
//
// When empty, the module version of the build info is used (a `go install
// ...@v1.2.3` build, or the VCS-stamped pseudo-version of a build in a git
// checkout), else "dev".
var Version = ""

func init() {
	register(Command{Name: "version", Short: "print the version", Run: func(_ context.Context, _ []string, env Env) (int, error) {
		fmt.Fprintf(env.Stdout, "ecb %s (client protocol %s, backend contract %s, Server API %s, %s)\n",
			version(), ProtocolVersion, ecbserver.ContractFullVersion, ServerAPIVersion, runtime.Version())
		return 0, nil
	}})
}

func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(Version, bi)
}

// versionOf picks the version to report: the linker's, else the module's
// from the build info, else "dev".
func versionOf(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versions are the versions the discovery document states (GET /v1/discover).
func versions() discover.Versions {
	return discover.Versions{Release: version(), Protocol: ProtocolVersion, Contract: ecbserver.ContractFullVersion, ServerAPI: ServerAPIVersion}
}
