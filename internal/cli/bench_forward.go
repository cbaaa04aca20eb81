package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/ecbridge/ecb/bench/forward"
)

// runBenchForward is `ecb bench forward`: the cost of a long-polling cycle
// through a node that does not hold the session (docs/performance.md).
func runBenchForward(ctx context.Context, args []string, env Env) (int, error) {
	fs := newFlags("bench forward", env)
	redisURL := fs.String("redis", "redis://127.0.0.1:6379/0", "the Redis the two nodes share")
	cycles := fs.Int("cycles", 2000, "measured poll cycles of each kind (direct, forwarded), alternating")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	if err := forward.Run(ctx, forward.Config{ECB: self, RedisURL: *redisURL, Cycles: *cycles}, env.Stdout, env.Stderr); err != nil {
		return 1, fmt.Errorf("bench forward: %w", err)
	}
	return 0, nil
}
