package calltime_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/calltime"
)

func TestMeterAddsCallsOfItsContextOnly(t *testing.T) {
	ctx, m := calltime.Start(context.Background())
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { calltime.Add(ctx, time.Millisecond) })
	}
	wg.Wait()
	calltime.Add(context.Background(), time.Hour) // no meter: ignored
	if got := m.Total(); got != 10*time.Millisecond {
		t.Fatalf("Total = %v, want 10ms", got)
	}
}
