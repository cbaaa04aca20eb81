package support

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustHours(t *testing.T, hc HoursConfig) *Hours {
	t.Helper()
	h, err := ParseHours(hc, "hours")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestHoursOpenAtAndNextChange(t *testing.T) {
	office := HoursConfig{Timezone: "Europe/Berlin", Weekly: map[string][]string{
		"mon": {"13:00-17:30", "09:00-12:00"}, "tue": {"09:00-17:00"}, "fri": {"09:00-12:00", "12:00-13:00"},
	}, ClosedDates: []string{"2026-12-28"}}
	allDay := HoursConfig{Weekly: map[string][]string{"wed": {"00:00-24:00"}, "thu": {"00:00-24:00"}}}
	// Europe/Berlin 2026: summer time starts Sun 03-29 at 02:00 CET (01:00Z,
	// the clock jumps to 03:00) and ends Sun 10-25 at 03:00 CEST (01:00Z,
	// the clock goes back to 02:00).
	gap := HoursConfig{Timezone: "Europe/Berlin", Weekly: map[string][]string{"sun": {"02:30-03:30"}}}
	repeated := HoursConfig{Timezone: "Europe/Berlin", Weekly: map[string][]string{"sun": {"01:00-02:45"}}}
	evening := HoursConfig{Timezone: "Europe/Berlin", Weekly: map[string][]string{"sat": {"22:00-24:00"}}}
	tests := []struct {
		name string
		hc   HoursConfig
		at   string // UTC
		open bool
		next string // UTC; empty: none
	}{
		{"before the first range (CET)", office, "2026-12-21T07:59:59Z", false, "2026-12-21T08:00:00Z"},
		{"opening instant", office, "2026-12-21T08:00:00Z", true, "2026-12-21T11:00:00Z"},
		{"lunch", office, "2026-12-21T11:00:00Z", false, "2026-12-21T12:00:00Z"},
		{"afternoon", office, "2026-12-21T16:29:59Z", true, "2026-12-21T16:30:00Z"},
		{"end is exclusive", office, "2026-12-21T16:30:00Z", false, "2026-12-22T08:00:00Z"},
		{"summer time, offset +2", office, "2026-07-06T07:00:00Z", true, "2026-07-06T10:00:00Z"},
		{"adjacent ranges are one", office, "2026-12-25T10:30:00Z", true, "2026-12-25T12:00:00Z"},
		{"closed date is skipped", office, "2026-12-25T12:00:00Z", false, "2026-12-29T08:00:00Z"},
		{"closed date, inside a range", office, "2026-12-28T10:00:00Z", false, "2026-12-29T08:00:00Z"},
		{"weekend", office, "2026-12-26T10:00:00Z", false, "2026-12-29T08:00:00Z"},
		{"all day, UTC default", allDay, "2026-12-23T00:00:00Z", true, "2026-12-25T00:00:00Z"},
		{"all day, across midnight", allDay, "2026-12-24T23:59:59Z", true, "2026-12-25T00:00:00Z"},
		{"all day, closed", allDay, "2026-12-25T00:00:00Z", false, "2026-12-30T00:00:00Z"},
		// Spring forward: 02:30 does not exist; the range opens at the jump.
		{"DST gap: before", gap, "2026-03-29T00:30:00Z", false, "2026-03-29T01:00:00Z"},
		{"DST gap: opens at 03:00 CEST", gap, "2026-03-29T01:00:00Z", true, "2026-03-29T01:30:00Z"},
		{"DST gap: closed at 03:30 CEST", gap, "2026-03-29T01:30:00Z", false, "2026-04-05T00:30:00Z"},
		// Fall back: 02:00-03:00 happens twice.
		{"DST repeat: first 02:30 CEST", gap, "2026-10-25T00:30:00Z", true, "2026-10-25T01:00:00Z"},
		{"DST repeat: back to 02:00 CET", gap, "2026-10-25T01:00:00Z", false, "2026-10-25T01:30:00Z"},
		{"DST repeat: second 02:30 CET", gap, "2026-10-25T01:30:00Z", true, "2026-10-25T02:30:00Z"},
		{"DST repeat: range ending in the hour", repeated, "2026-10-24T23:00:00Z", true, "2026-10-25T00:45:00Z"},
		{"DST repeat: first 02:45 CEST", repeated, "2026-10-25T00:45:00Z", false, "2026-10-25T01:00:00Z"},
		{"DST repeat: second pass", repeated, "2026-10-25T01:00:00Z", true, "2026-10-25T01:45:00Z"},
		{"DST repeat: after", repeated, "2026-10-25T01:45:00Z", false, "2026-11-01T00:00:00Z"},
		{"to midnight before spring forward", evening, "2026-03-28T21:30:00Z", true, "2026-03-28T23:00:00Z"},
		{"to midnight before fall back", evening, "2026-10-24T20:00:00Z", true, "2026-10-24T22:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := mustHours(t, tc.hc)
			at := utc(tc.at)
			if got := h.OpenAt(at); got != tc.open {
				t.Fatalf("OpenAt(%s) = %v, want %v", tc.at, got, tc.open)
			}
			next, ok := h.NextChange(at)
			if tc.next == "" {
				if ok {
					t.Fatalf("NextChange(%s) = %s, want none", tc.at, next.UTC().Format(time.RFC3339))
				}
				return
			}
			if !ok || !next.Equal(utc(tc.next)) {
				t.Fatalf("NextChange(%s) = %s %v, want %s", tc.at, next.UTC().Format(time.RFC3339), ok, tc.next)
			}
			// The state really changes there, and not before.
			if h.OpenAt(next) == tc.open || h.OpenAt(next.Add(-time.Second)) != tc.open {
				t.Fatalf("no change at %s", tc.next)
			}
			if open, ok := h.NextOpen(at); !ok || (tc.open && !open.Equal(at)) || (!tc.open && !open.Equal(next)) {
				t.Fatalf("NextOpen(%s) = %s", tc.at, open)
			}
		})
	}
}

// TestHoursNextChangeAgreesWithOpenAt scans two years of minutes around
// both Berlin time changes: the state changes exactly at NextChange.
func TestHoursNextChangeAgreesWithOpenAt(t *testing.T) {
	h := mustHours(t, HoursConfig{Timezone: "Europe/Berlin", Weekly: map[string][]string{
		"sat": {"23:00-24:00"}, "sun": {"00:00-01:30", "02:15-02:45", "03:00-04:00"}, "mon": {"00:00-00:30"},
	}})
	// OpenAt minute by minute over each window and a week beyond it (the
	// schedule changes at least weekly), then the next change of every
	// minute of the window, found by one backward pass.
	const window, beyond = 48 * 60, 7 * 24 * 60
	for _, day := range []string{"2026-03-28T12:00:00Z", "2026-10-24T12:00:00Z", "2027-03-27T12:00:00Z", "2027-10-30T12:00:00Z"} {
		start := utc(day)
		open := make([]bool, window+beyond)
		for m := range open {
			open[m] = h.OpenAt(start.Add(time.Duration(m) * time.Minute))
		}
		nextDiff := make([]int, len(open)) // the first later minute whose state differs, -1 if none
		nextDiff[len(open)-1] = -1
		for m := len(open) - 2; m >= 0; m-- {
			switch {
			case open[m+1] != open[m]:
				nextDiff[m] = m + 1
			default:
				nextDiff[m] = nextDiff[m+1]
			}
		}
		for m := 0; m < window; m++ {
			at := start.Add(time.Duration(m) * time.Minute)
			next, ok := h.NextChange(at)
			if !ok || nextDiff[m] < 0 {
				t.Fatalf("no change after %s (NextChange ok %v, scan %d)", at, ok, nextDiff[m])
			}
			if want := start.Add(time.Duration(nextDiff[m]) * time.Minute); !next.Equal(want) {
				t.Fatalf("NextChange(%s) = %s, scanning finds %s", at.UTC(), next.UTC(), want.UTC())
			}
		}
	}
}

func TestHoursNever(t *testing.T) {
	h := mustHours(t, HoursConfig{Weekly: map[string][]string{"mon": {"09:00-10:00"}}, ClosedDates: nil})
	var closed []string
	d := utc("2026-01-05T00:00:00Z") // a Monday
	for i := range 50 {
		closed = append(closed, d.AddDate(0, 0, 7*i).Format(time.DateOnly))
	}
	h2 := mustHours(t, HoursConfig{Weekly: map[string][]string{"mon": {"09:00-10:00"}}, ClosedDates: closed})
	if next, ok := h.NextChange(d); !ok || !next.Equal(d.Add(9*time.Hour)) {
		t.Fatalf("next %s %v", next, ok)
	}
	// Every Monday of 50 weeks closed: it opens 50 weeks later (within the horizon).
	if next, ok := h2.NextChange(d); !ok || !next.Equal(d.AddDate(0, 0, 7*50).Add(9*time.Hour)) {
		t.Fatalf("next %s %v", next, ok)
	}
	var nilHours *Hours
	if nilHours.OpenAt(d) {
		t.Fatal("nil hours open")
	}
	if _, ok := nilHours.NextChange(d); ok {
		t.Fatal("nil hours change")
	}
}

func TestParseHoursRefusals(t *testing.T) {
	week := func(day string, ranges ...string) map[string][]string { return map[string][]string{day: ranges} }
	tests := []struct {
		name string
		hc   HoursConfig
		want string // in the error
	}{
		{"unknown zone", HoursConfig{Timezone: "Mars/Olympus", Weekly: week("mon", "09:00-10:00")}, `hours.timezone: "Mars/Olympus" is not an IANA`},
		{"Local zone", HoursConfig{Timezone: "Local", Weekly: week("mon", "09:00-10:00")}, `hours.timezone: "Local"`},
		{"path as zone", HoursConfig{Timezone: "../../etc/passwd", Weekly: week("mon", "09:00-10:00")}, `hours.timezone:`},
		{"unknown day", HoursConfig{Weekly: week("monday", "09:00-10:00")}, `hours.weekly: unknown day "monday"`},
		{"no dash", HoursConfig{Weekly: week("mon", "09:00")}, `hours.weekly.mon[0]: "09:00": expected HH:MM-HH:MM`},
		{"one digit", HoursConfig{Weekly: week("tue", "9:00-12:00")}, `hours.weekly.tue[0]:`},
		{"end before start", HoursConfig{Weekly: week("wed", "12:00-09:00")}, `hours.weekly.wed[0]: "12:00-09:00": the end must be after the start`},
		{"empty range", HoursConfig{Weekly: week("wed", "09:00-09:00")}, `the end must be after the start`},
		{"24:00 as start", HoursConfig{Weekly: week("thu", "24:00-24:00")}, `hours.weekly.thu[0]:`},
		{"beyond 24:00", HoursConfig{Weekly: week("thu", "09:00-24:30")}, `24:30 is not a time of day`},
		{"minutes", HoursConfig{Weekly: week("thu", "09:60-10:00")}, `09:60 is not a time of day`},
		{"overlap", HoursConfig{Weekly: week("fri", "09:00-12:00", "11:00-13:00")}, `hours.weekly.fri: the ranges 09:00-12:00 and 11:00-13:00 overlap`},
		{"nested", HoursConfig{Weekly: week("fri", "08:00-18:00", "09:00-10:00")}, `overlap`},
		{"no day", HoursConfig{Timezone: "UTC"}, `hours.weekly: no opening hours on any day`},
		{"only empty days", HoursConfig{Weekly: week("sat")}, `hours.weekly: no opening hours`},
		{"bad date", HoursConfig{Weekly: week("mon", "09:00-10:00"), ClosedDates: []string{"2026-12-25", "25.12.2026"}}, `hours.closedDates[1]: "25.12.2026" is not a date`},
		{"no such month", HoursConfig{Weekly: week("mon", "09:00-10:00"), ClosedDates: []string{"2026-13-01"}}, `hours.closedDates[0]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHours(tc.hc, "hours")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Every problem at once.
	_, err := ParseHours(HoursConfig{Timezone: "Nowhere", Weekly: map[string][]string{"mon": {"x"}, "sun": {"10:00-09:00"}}}, "h")
	if n := len(strings.Split(err.Error(), "\n")); n != 3 {
		t.Fatalf("%d errors, want 3: %v", n, err)
	}
}

func TestHoursConfigRoundTrip(t *testing.T) {
	hc := HoursConfig{Timezone: "America/New_York", Weekly: map[string][]string{
		"mon": {"13:00-17:30", "09:00-12:00"}, "sun": {"00:00-24:00"}, "tue": {},
	}, ClosedDates: []string{"2026-12-25", "2026-01-01", "2026-12-25"}}
	h := mustHours(t, hc)
	want := HoursConfig{Timezone: "America/New_York", Weekly: map[string][]string{
		"mon": {"09:00-12:00", "13:00-17:30"}, "sun": {"00:00-24:00"},
	}, ClosedDates: []string{"2026-01-01", "2026-12-25"}}
	if got := h.Config(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Config() = %+v, want %+v", got, want)
	}
	if got := mustHours(t, HoursConfig{Weekly: map[string][]string{"mon": {"09:00-10:00"}}}).Config().Timezone; got != "UTC" {
		t.Fatalf("default zone %q", got)
	}
}

func TestConfigHours(t *testing.T) {
	open := true
	c := Config{Workgroups: []WorkgroupConfig{
		{Name: "a", Hours: &HoursConfig{Timezone: "Europe/Berlin", Weekly: map[string][]string{"mon": {"09:00-17:00"}}}},
		{Name: "b", Open: &open, Hours: &HoursConfig{Timezone: "Atlantis", Weekly: map[string][]string{"mon": {"17:00-09:00"}}}},
		{Name: "c", Strategy: "random", Hours: &HoursConfig{Weekly: map[string][]string{"xyz": {"09:00-10:00"}}}},
	}}
	_, err := c.Resolve()
	for _, want := range []string{
		`support.workgroups[1].hours.timezone: "Atlantis"`,
		`support.workgroups[1].hours.weekly.mon[0]: "17:00-09:00"`,
		`support.workgroups[2]: support: workgroup "c": strategy`,
		`support.workgroups[2].hours.weekly: unknown day "xyz"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	c.Workgroups = c.Workgroups[:1]
	wgs, err := c.Resolve()
	if err != nil || len(wgs) != 1 || wgs[0].Hours == nil || wgs[0].Hours.Location().String() != "Europe/Berlin" {
		t.Fatalf("%+v %v", wgs, err)
	}
	if _, err := c.ResolveWorkgroup(WorkgroupConfig{Name: "x", Hours: &HoursConfig{}}, "hours"); err == nil || !strings.HasPrefix(err.Error(), "hours.weekly") {
		t.Fatalf("ResolveWorkgroup: %v", err)
	}
}

func TestWorkgroupOpeningHours(t *testing.T) {
	// t0 is Wednesday 2025-01-01 09:00 UTC.
	h := mustHours(t, HoursConfig{Weekly: map[string][]string{"wed": {"10:00-11:00"}}})
	f := newFixture(t, Workgroup{Name: "support", Strategy: RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 2, Open: true, Hours: h})
	st, err := f.e.Status("support")
	if err != nil || st.Open || !st.OpensAt.Equal(t0.Add(time.Hour)) || !st.ClosesAt.IsZero() {
		t.Fatalf("before hours: %+v %v", st, err)
	}
	_, _, _, err = f.e.Ask(Visitor{ID: "v1"}, "support", "q", nil, "")
	var ee *Error
	if !errors.As(err, &ee) || ee.Kind != KindConflict || !strings.Contains(ee.Msg, "opens at 2025-01-01T10:00:00Z (UTC)") {
		t.Fatalf("ask before hours: %v", err)
	}
	f.clk.Advance(time.Hour)
	st, _ = f.e.Status("support")
	if !st.Open || !st.ClosesAt.Equal(t0.Add(2*time.Hour)) || !st.OpensAt.IsZero() {
		t.Fatalf("within hours: %+v", st)
	}
	r := f.ask(t, "v1")
	f.clk.Advance(time.Hour)
	st, _ = f.e.Status("support")
	if st.Open || !st.OpensAt.Equal(t0.AddDate(0, 0, 7).Add(time.Hour)) || st.QueueLength != 1 {
		t.Fatalf("after hours: %+v", st)
	}
	if _, _, _, err := f.e.Ask(Visitor{ID: "v2"}, "support", "q", nil, ""); kindOf(err) != KindConflict {
		t.Fatalf("ask after hours: %v", err)
	}
	// The request queued before closing time is still routed.
	f.rec.take()
	f.avail(t, "a", true)
	if o := lastOffer(t, f.rec.take(), "a"); o.requestID != r.ID {
		t.Fatalf("offer %+v", o)
	}
	// The open switch off: closed, no opensAt.
	w := Workgroup{Name: "support", Strategy: RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 2, Open: false, Hours: h}
	if err := f.e.SetWorkgroup(w); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(7*24*time.Hour - time.Hour) // next Wednesday 10:00
	if st, _ = f.e.Status("support"); st.Open || !st.OpensAt.IsZero() || !st.ClosesAt.IsZero() {
		t.Fatalf("switched off: %+v", st)
	}
	if _, _, _, err := f.e.Ask(Visitor{ID: "v2"}, "support", "q", nil, ""); err == nil || strings.Contains(err.Error(), "opens at") {
		t.Fatalf("ask switched off: %v", err)
	}
}
