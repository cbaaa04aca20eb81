package support

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// queued is a workgroup "support" with two queues: billing (topic billing,
// agent a2) and the catch-all general (a1 and a2).
func queued() Workgroup {
	return Workgroup{Name: "support", Strategy: RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 2, Open: true,
		Queues: []Queue{
			{Name: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"a2"}},
			{Name: "general", Agents: []string{"a1", "a2"}},
		}}
}

// queueRecorder is a recorder that also hears QueueIn.
type queueRecorder struct {
	*recorder
	in []string
}

func (q *queueRecorder) QueueIn(v, id, queue string, pos int, est time.Duration) {
	q.mu.Lock()
	q.in = append(q.in, id+"@"+queue+"#"+string(rune('0'+pos)))
	q.mu.Unlock()
	q.Queue(v, id, pos, est)
}

func askMeta(t *testing.T, f *fixture, visitor string, meta map[string]any) Request {
	t.Helper()
	r, _, _, err := f.e.Ask(Visitor{ID: visitor}, "support", "q", meta, "")
	if err != nil {
		t.Fatalf("ask %s: %v", visitor, err)
	}
	return r
}

func TestQueueLandsInFirstMatch(t *testing.T) {
	f := newFixture(t, queued())
	r1 := askMeta(t, f, "v1", map[string]any{"topic": "billing", "lang": "en"})
	r2 := askMeta(t, f, "v2", map[string]any{"topic": "shipping"})
	r3 := askMeta(t, f, "v3", nil)
	if r1.Queue != "billing" || r2.Queue != "general" || r3.Queue != "general" {
		t.Fatalf("queues: %q %q %q", r1.Queue, r2.Queue, r3.Queue)
	}
	// The positions are within each queue.
	st, _ := f.e.Status("support")
	if st.QueueLength != 3 || len(st.Queues) != 2 || st.Queues[0].Queue != "billing" || st.Queues[0].QueueLength != 1 ||
		st.Queues[1].QueueLength != 2 {
		t.Fatalf("status: %+v", st)
	}
	evs := f.rec.take()
	pos := map[string]int{}
	for _, ev := range evs {
		if ev.kind == "queue" {
			pos[ev.requestID] = ev.position
		}
	}
	if pos[r1.ID] != 1 || pos[r2.ID] != 1 || pos[r3.ID] != 2 {
		t.Fatalf("positions %v", pos)
	}
}

func TestQueueOffersOnlyToItsAgents(t *testing.T) {
	f := newFixture(t, queued())
	rb := askMeta(t, f, "v1", map[string]any{"topic": "billing"})
	// a1 serves general only: the billing request waits for a2.
	f.avail(t, "a1", true)
	for _, ev := range f.rec.take() {
		if ev.kind == "offer" {
			t.Fatalf("offer %+v to an agent of another queue", ev)
		}
	}
	st, _ := f.e.Status("support")
	if st.Queues[0].AgentsAvailable != 0 || st.Queues[1].AgentsAvailable != 1 || st.AgentsAvailable != 1 {
		t.Fatalf("status: %+v", st)
	}
	// A general request goes to a1 at once, though younger.
	rg := askMeta(t, f, "v2", map[string]any{"topic": "other"})
	if o := lastOffer(t, f.rec.take(), "a1"); o.requestID != rg.ID {
		t.Fatalf("a1 offered %s", o.requestID)
	}
	f.avail(t, "a2", true)
	if o := lastOffer(t, f.rec.take(), "a2"); o.requestID != rb.ID {
		t.Fatalf("a2 offered %s", o.requestID)
	}
}

// An agent of two queues gets the request that waited longest in either
// (FIFO within each queue).
func TestQueueOldestFirstAcrossAgentQueues(t *testing.T) {
	f := newFixture(t, queued())
	rg := askMeta(t, f, "v1", nil)
	rb := askMeta(t, f, "v2", map[string]any{"topic": "billing"})
	f.avail(t, "a2", true)
	o := lastOffer(t, f.rec.take(), "a2")
	if o.requestID != rg.ID {
		t.Fatalf("a2 offered %s, want the older %s", o.requestID, rg.ID)
	}
	if err := f.e.Reject("a2", o.offerID); err != nil {
		t.Fatal(err)
	}
	// a2 rejected rg (cooling down): the billing one is next.
	if o := lastOffer(t, f.rec.take(), "a2"); o.requestID != rb.ID {
		t.Fatalf("a2 offered %s after rejecting", o.requestID)
	}
}

func TestQueueNoMatchRefused(t *testing.T) {
	w := queued()
	w.Queues = w.Queues[:1] // billing only: no catch-all
	f := newFixture(t, w)
	_, _, _, err := f.e.Ask(Visitor{ID: "v1"}, "support", "q", map[string]any{"topic": 7}, "")
	if kindOf(err) != KindInvalid || !strings.Contains(err.Error(), "no catch-all") {
		t.Fatalf("err = %v", err)
	}
	if st, _ := f.e.Status("support"); st.QueueLength != 0 {
		t.Fatalf("a refused request waits: %+v", st)
	}
}

func TestQueueMatchScalars(t *testing.T) {
	q := Queue{Name: "q", Match: map[string]string{"n": "2", "b": "true", "s": "x"}}
	for _, c := range []struct {
		meta map[string]any
		want bool
	}{
		{map[string]any{"n": float64(2), "b": true, "s": "x"}, true},
		{map[string]any{"n": json.Number("2"), "b": true, "s": "x", "extra": 1}, true},
		{map[string]any{"n": "2", "b": "true", "s": "x"}, true},
		{map[string]any{"n": 2.5, "b": true, "s": "x"}, false},
		{map[string]any{"n": float64(2), "s": "x"}, false},
		{map[string]any{"n": float64(2), "b": true, "s": []any{"x"}}, false},
		{map[string]any{"n": float64(2), "b": nil, "s": "x"}, false},
		{nil, false},
	} {
		if got := q.Matches(c.meta); got != c.want {
			t.Errorf("Matches(%v) = %v", c.meta, got)
		}
	}
	if !(Queue{Name: "all"}).Matches(nil) {
		t.Error("a catch-all refuses")
	}
}

func TestQueuePushNamesTheQueue(t *testing.T) {
	qr := &queueRecorder{recorder: &recorder{}}
	e, err := New([]Workgroup{queued()}, Options{Clock: NewManualClock(t0), Events: qr})
	if err != nil {
		t.Fatal(err)
	}
	r, _, _, err := e.Ask(Visitor{ID: "v1"}, "support", "q", map[string]any{"topic": "billing"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(qr.in) != 1 || qr.in[0] != r.ID+"@billing#1" {
		t.Fatalf("QueueIn: %v", qr.in)
	}
}

// Changing the queues moves the waiting requests (refused when one would
// match none), and takes back an offer whose agent no longer serves it.
func TestQueueReconfigure(t *testing.T) {
	f := newFixture(t, queued())
	f.avail(t, "a2", true)
	rb := askMeta(t, f, "v1", map[string]any{"topic": "billing"})
	o := lastOffer(t, f.rec.take(), "a2")
	w := queued()
	w.Queues = []Queue{{Name: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"a3"}}}
	// v2 waits in general, which the new queues would not take.
	askMeta(t, f, "v2", nil)
	if _, err := f.e.PutWorkgroup(w); kindOf(err) != KindConflict {
		t.Fatalf("put that strands a request: %v", err)
	}
	if info, _ := f.e.Workgroup("support"); len(info.Workgroup.Queues) != 2 {
		t.Fatalf("refused put changed the queues: %+v", info.Workgroup.Queues)
	}
	w.Queues = append(w.Queues, Queue{Name: "rest"})
	if _, err := f.e.PutWorkgroup(w); err != nil {
		t.Fatal(err)
	}
	evs := f.rec.take()
	found := false
	for _, ev := range evs {
		if ev.kind == "revoked" && ev.offerID == o.offerID && ev.reason == ReasonUnavailable {
			found = true
		}
	}
	if !found {
		t.Fatalf("offer to a2 not revoked: %+v", evs)
	}
	r, _ := f.e.Request(rb.ID)
	if r.Queue != "billing" || r.State != StateQueued {
		t.Fatalf("billing request: %+v", r)
	}
	// a2 serves "rest" (no agents list: everyone): v2's request goes to a2.
	rs := f.e.Requests("v2")
	if len(rs) != 1 || rs[0].Queue != "rest" || rs[0].State != StateOffered {
		t.Fatalf("v2: %+v", rs)
	}
}

// A chat put back in the queue lands in its own queue, offered only to its agents.
func TestQueueTransferBack(t *testing.T) {
	f := newFixture(t, queued())
	f.avail(t, "a2", true)
	f.avail(t, "a1", true)
	rb := askMeta(t, f, "v1", map[string]any{"topic": "billing"})
	o := lastOffer(t, f.rec.take(), "a2")
	if _, err := f.e.Accept(context.Background(), "a2", o.offerID); err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	if _, err := f.e.Transfer(context.Background(), "a2", rb.ID, ""); err != nil {
		t.Fatal(err)
	}
	for _, ev := range f.rec.take() {
		if ev.kind == "offer" {
			t.Fatalf("offer %+v: a1 is of another queue, a2 cools down", ev)
		}
	}
	f.clk.Advance(11 * time.Second)
	if o := lastOffer(t, f.rec.take(), "a2"); o.requestID != rb.ID {
		t.Fatalf("offered %s", o.requestID)
	}
}

func TestQueueSnapshotRoundTrip(t *testing.T) {
	f := newFixture(t, queued())
	f.avail(t, "a2", true)
	askMeta(t, f, "v1", map[string]any{"topic": "billing"})
	askMeta(t, f, "v2", nil)
	o := lastOffer(t, f.rec.take(), "a2")
	f.clk.Advance(3 * time.Second)
	if _, err := f.e.Accept(context.Background(), "a2", o.offerID); err != nil {
		t.Fatal(err)
	}
	s := f.e.Snapshot()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	e2, err := Restore(back, Options{Clock: NewManualClock(f.clk.Now()), Events: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(e2.Snapshot())
	if string(b) != string(b2) {
		t.Fatalf("restored differs:\n%s\n%s", b, b2)
	}
	st1, _ := f.e.Status("support")
	st2, _ := e2.Status("support")
	if len(st2.Queues) != 2 || st2.Queues[0] != st1.Queues[0] || st2.Queues[1] != st1.Queues[1] {
		t.Fatalf("status after restore %+v, before %+v", st2, st1)
	}
	if !strings.Contains(string(b), `"queues":[{"queue":"billing"`) {
		t.Fatalf("snapshot without queues: %s", b)
	}
}

func TestQueueConfig(t *testing.T) {
	c := Config{Workgroups: []WorkgroupConfig{{Name: "s", Queues: []QueueConfig{
		{Queue: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"a2"}}, {Queue: "general"}}}}}
	wgs, err := c.Resolve()
	if err != nil || len(wgs[0].Queues) != 2 || wgs[0].Queues[0].Agents[0] != "a2" {
		t.Fatalf("resolve: %v %+v", err, wgs)
	}
	for _, c := range []struct {
		qs   []QueueConfig
		want string
	}{
		{[]QueueConfig{{Queue: ""}}, "support.workgroups[0].queues[0]: queue must be a name"},
		{[]QueueConfig{{Queue: "a"}, {Queue: "a"}}, `support.workgroups[0].queues[1]: queue "a" is defined twice`},
		{[]QueueConfig{{Queue: "a", Match: map[string]string{"": "x"}}}, "a key must be"},
		{[]QueueConfig{{Queue: "a", Agents: []string{"x", "x"}}}, `agents[1] repeats "x"`},
	} {
		_, err := Config{Workgroups: []WorkgroupConfig{{Name: "s", Queues: c.qs}}}.Resolve()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.qs, err, c.want)
		}
	}
}

// FuzzQueues: any queue list (as the configuration and the Server API give
// it) and any metadata: ParseQueues accepts or refuses with an error, never
// panics; what it accepts validates, and matching never panics.
func FuzzQueues(f *testing.F) {
	f.Add(`[{"queue":"billing","match":{"topic":"billing"},"agents":["agent2"]},{"queue":"general"}]`, `{"topic":"billing"}`)
	f.Add(`[{"queue":"n","match":{"n":"2","b":"true"}}]`, `{"n":2,"b":true}`)
	f.Add(`[{"queue":""}]`, `null`)
	f.Add(`[{"queue":"a"},{"queue":"a"}]`, `{"a":[1]}`)
	f.Add(`[{"queue":"a","match":{"":"x"},"agents":["",""]}]`, `{"":{}}`)
	f.Add(`[{"queue":"\u0007"}]`, `{"x":1e308}`)
	f.Fuzz(func(t *testing.T, queues, metadata string) {
		var qs []QueueConfig
		if json.Unmarshal([]byte(queues), &qs) != nil {
			return
		}
		parsed, err := ParseQueues(qs, "queues")
		if err != nil {
			if parsed != nil || err.Error() == "" {
				t.Fatalf("refused with %v but returned %v", err, parsed)
			}
			return
		}
		w := Workgroup{Name: "w", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Queues: parsed}
		if err := w.Validate(); err != nil {
			t.Fatalf("parsed queues do not validate: %v", err)
		}
		var meta map[string]any
		_ = json.Unmarshal([]byte(metadata), &meta)
		name, ok := w.queueFor(meta)
		if ok != (name != "") && len(parsed) > 0 {
			t.Fatalf("queueFor = %q, %v", name, ok)
		}
	})
}
