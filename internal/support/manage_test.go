package support

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestPutWorkgroupReportsCreation(t *testing.T) {
	f := newFixture(t)
	sales := Workgroup{Name: "sales", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Open: true}
	if created, err := f.e.PutWorkgroup(sales); err != nil || !created {
		t.Fatalf("first put: %v %v", created, err)
	}
	sales.DisplayName = "Sales"
	if created, err := f.e.PutWorkgroup(sales); err != nil || created {
		t.Fatalf("second put: %v %v", created, err)
	}
	info, err := f.e.Workgroup("sales")
	if err != nil || info.Workgroup.DisplayName != "Sales" || !info.Status.Open {
		t.Fatalf("info %+v %v", info, err)
	}
	if _, err := f.e.PutWorkgroup(Workgroup{Name: "bad"}); err == nil {
		t.Fatal("invalid workgroup accepted")
	}
	var names []string
	for _, i := range f.e.WorkgroupInfos() {
		names = append(names, i.Workgroup.Name)
	}
	if !slices.Equal(names, []string{"sales", "support"}) {
		t.Fatalf("infos %v", names)
	}
	if _, err := f.e.Workgroup("nope"); kindOf(err) != KindNotFound {
		t.Fatalf("unknown: %v", err)
	}
}

func TestNewWorkgroupReachesAgentsWhoClaimedIt(t *testing.T) {
	f := newFixture(t)
	// a's token names support and sales (not served yet); b's support only.
	st, err := f.e.SetAvailability("a", []string{"support", "sales", "sales"}, true, nil)
	if err != nil || !slices.Equal(st.Workgroups, []string{"support"}) {
		t.Fatalf("a: %+v %v", st, err)
	}
	f.avail(t, "b", true)
	if _, err := f.e.PutWorkgroup(Workgroup{Name: "sales", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Open: true}); err != nil {
		t.Fatal(err)
	}
	info, _ := f.e.Workgroup("sales")
	if info.Status.AgentsAvailable != 1 {
		t.Fatalf("sales agents %d, want a", info.Status.AgentsAvailable)
	}
	r, _, _, err := f.e.Ask(Visitor{ID: "v"}, "sales", "q", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if o := lastOffer(t, f.rec.take(), "a"); o.requestID != r.ID {
		t.Fatalf("offer %+v", o)
	}
	if st, _ := f.e.SetAvailability("a", []string{"support", "sales"}, true, nil); !slices.Equal(st.Workgroups, []string{"sales", "support"}) {
		t.Fatalf("a serves %v", st.Workgroups)
	}
}

func TestRemoveWorkgroup(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.e.PutWorkgroup(Workgroup{Name: "sales", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Open: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.SetAvailability("a", []string{"support", "sales"}, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.e.RemoveWorkgroup("nope"); kindOf(err) != KindNotFound {
		t.Fatalf("unknown: %v", err)
	}
	// A waiting request: conflict.
	r, _, _, err := f.e.Ask(Visitor{ID: "v"}, "sales", "q", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.RemoveWorkgroup("sales"); kindOf(err) != KindConflict {
		t.Fatalf("with a waiting request: %v", err)
	}
	// A live chat: conflict.
	o := lastOffer(t, f.rec.take(), "a")
	if _, err := f.e.Accept(ctx, "a", o.offerID); err != nil {
		t.Fatal(err)
	}
	if err := f.e.RemoveWorkgroup("sales"); kindOf(err) != KindConflict {
		t.Fatalf("with a live chat: %v", err)
	}
	if err := f.e.Close("v", r.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.e.RemoveWorkgroup("sales"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := f.e.Status("sales"); kindOf(err) != KindNotFound {
		t.Fatalf("status after remove: %v", err)
	}
	if _, _, _, err := f.e.Ask(Visitor{ID: "v"}, "sales", "q", nil, ""); kindOf(err) != KindNotFound {
		t.Fatalf("ask after remove: %v", err)
	}
	// The agent no longer serves it, and the other workgroup goes on.
	if st, _ := f.e.SetAvailability("a", []string{"support", "sales"}, true, nil); !slices.Equal(st.Workgroups, []string{"support"}) {
		t.Fatalf("a serves %v", st.Workgroups)
	}
	f.rec.take()
	f.ask(t, "w")
	lastOffer(t, f.rec.take(), "a")
	// Added again: a (who claims it) serves it at once.
	if _, err := f.e.PutWorkgroup(Workgroup{Name: "sales", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 3, Open: true}); err != nil {
		t.Fatal(err)
	}
	if info, _ := f.e.Workgroup("sales"); info.Status.AgentsAvailable != 1 {
		t.Fatalf("agents after re-adding: %+v", info.Status)
	}
	// Removing the only workgroup of an available agent leaves them serving none.
	if _, err := f.e.SetAvailability("s", []string{"sales"}, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.e.RemoveWorkgroup("sales"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.SetAvailability("s", []string{"sales"}, true, nil); kindOf(err) != KindForbidden {
		t.Fatalf("agent of a removed workgroup: %v", err)
	}
}
