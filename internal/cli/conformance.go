package cli

import (
	"context"
	"fmt"

	"github.com/ecbridge/ecb/internal/socketio/conformance"
)

func init() {
	register(Command{
		Name:  "conformance",
		Usage: "[--listen 127.0.0.1:3000]",
		Short: "test tool: serve the Socket.IO/Engine.IO conformance endpoints (docs/socketio.md)",
		Run: func(ctx context.Context, args []string, env Env) (int, error) {
			fs := newFlags("conformance", env)
			listen := fs.String("listen", "127.0.0.1:3000", "address to listen on (port 0 picks a free one; the address is printed)")
			if err := fs.Parse(args); err != nil {
				return 2, err
			}
			if fs.NArg() > 0 {
				return 2, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
			}
			if err := conformance.Run(ctx, *listen, env.Stdout); err != nil {
				return 1, err
			}
			return 0, nil
		},
	})
}
