package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// ProtocolVersion is the version of the client protocol (docs/protocol.md).
const ProtocolVersion = "1.1"

func init() {
	register(Command{Name: "version", Short: "print the version", Run: func(_ context.Context, _ []string, env Env) (int, error) {
		fmt.Fprintf(env.Stdout, "ecb %s (client protocol %s, backend contract %s, %s)\n", version(), ProtocolVersion, ecbserver.ContractVersion, runtime.Version())
		return 0, nil
	}})
}
