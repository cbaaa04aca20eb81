package support

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAskWithQueue measures one ask (queue, route, position pushes)
// into a workgroup whose agents are all full while queued requests wait:
// the cost every new visitor pays during a rush, under the engine's lock.
func BenchmarkAskWithQueue(b *testing.B) {
	for _, size := range []struct{ agents, queued int }{{10, 100}, {50, 1000}, {50, 5000}} {
		b.Run(fmt.Sprintf("agents=%d/queued=%d", size.agents, size.queued), func(b *testing.B) {
			f := newFixture(b, Workgroup{Name: "support", Strategy: LeastBusy, OfferTimeout: time.Hour, MaxChats: 1, Open: true})
			ctx := context.Background()
			for i := range size.agents {
				a := fmt.Sprintf("a%d", i)
				f.avail(b, a, true)
				f.ask(b, fmt.Sprintf("busy%d", i))
				if _, err := f.e.Accept(ctx, a, lastOffer(b, f.rec.take(), a).offerID); err != nil {
					b.Fatal(err)
				}
			}
			for i := range size.queued {
				f.ask(b, fmt.Sprintf("w%d", i))
			}
			f.rec.take()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := f.ask(b, fmt.Sprintf("v%d", i))
				if err := f.e.Cancel(r.VisitorID, r.ID); err != nil {
					b.Fatal(err)
				}
				if i%1024 == 0 {
					f.rec.take() // keep the recorder from growing
				}
			}
		})
	}
}

// BenchmarkAcceptClose measures a whole chat's routing life (ask, offer,
// accept with a thread, close) with agents free.
func BenchmarkAcceptClose(b *testing.B) {
	f := newFixture(b, Workgroup{Name: "support", Strategy: RoundRobin, OfferTimeout: time.Hour, MaxChats: 4, Open: true})
	ctx := context.Background()
	for i := range 20 {
		f.avail(b, fmt.Sprintf("a%d", i), true)
	}
	f.rec.take()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := f.ask(b, fmt.Sprintf("v%d", i))
		f.e.mu.Lock()
		o := f.e.requests[r.ID].offer
		f.e.mu.Unlock()
		if _, err := f.e.Accept(ctx, o.agentID, o.id); err != nil {
			b.Fatal(err)
		}
		if err := f.e.Close(r.VisitorID, r.ID); err != nil {
			b.Fatal(err)
		}
		f.rec.take()
	}
}
