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

// BenchmarkAskQueues is BenchmarkAskWithQueue's rush (50 busy agents, 1000
// waiting) in a workgroup without queues and in one with two (billing for
// a fifth of the agents, a catch-all general for all; every other request
// is a billing one), side by side: what the queues add to each ask.
func BenchmarkAskQueues(b *testing.B) {
	for _, queues := range []bool{false, true} {
		b.Run(fmt.Sprintf("queues=%v", queues), func(b *testing.B) {
			w := Workgroup{Name: "support", Strategy: LeastBusy, OfferTimeout: time.Hour, MaxChats: 1, Open: true}
			var billing []string
			for i := range 10 {
				billing = append(billing, fmt.Sprintf("a%d", i))
			}
			if queues {
				w.Queues = []Queue{{Name: "billing", Match: map[string]string{"topic": "billing"}, Agents: billing}, {Name: "general"}}
			}
			f := newFixture(b, w)
			ctx := context.Background()
			meta := func(i int) map[string]any {
				if i%2 == 0 {
					return map[string]any{"topic": "billing"}
				}
				return nil
			}
			ask := func(v string, i int) Request {
				r, _, _, err := f.e.Ask(Visitor{ID: v}, "support", "q", meta(i), "")
				if err != nil {
					b.Fatal(err)
				}
				return r
			}
			for i := range 50 {
				a := fmt.Sprintf("a%d", i)
				f.avail(b, a, true)
				ask(fmt.Sprintf("busy%d", i), 1)
				if _, err := f.e.Accept(ctx, a, lastOffer(b, f.rec.take(), a).offerID); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 1000 {
				ask(fmt.Sprintf("w%d", i), i)
			}
			f.rec.take()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := ask(fmt.Sprintf("v%d", i), i)
				if err := f.e.Cancel(r.VisitorID, r.ID); err != nil {
					b.Fatal(err)
				}
				if i%1024 == 0 {
					f.rec.take()
				}
			}
		})
	}
}
