//go:build !unix

package fanout

import (
	"math"
	"time"
)

// selfCPU is not measured here: the benchmark's figures (docs/performance.md)
// come from Linux. It returns 0, which the report shows as no CPU time.
func selfCPU() time.Duration { return 0 }

// RaiseFileLimit: there is no open-file limit to raise on this system.
func RaiseFileLimit() int { return math.MaxInt32 }
