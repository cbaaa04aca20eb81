package support

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	// The zones are embedded so that opening hours work on machines without
	// a system time zone database (distroless images, Windows).
	_ "time/tzdata"
)

// HoursConfig is how opening hours are written, in the configuration
// (support.workgroups[i].hours) and in the Server API:
//
//	timezone: Europe/Berlin          # IANA zone, default UTC
//	weekly:                          # days absent = closed that day
//	  mon: ["09:00-12:00", "13:00-17:30"]
//	closedDates: ["2026-12-25"]      # whole days closed, in the zone
type HoursConfig struct {
	Timezone    string              `yaml:"timezone" json:"timezone,omitempty"`
	Weekly      map[string][]string `yaml:"weekly" json:"weekly"`
	ClosedDates []string            `yaml:"closedDates" json:"closedDates,omitempty"`
}

// Limits of opening hours.
const (
	maxRangesPerDay = 48
	maxClosedDates  = 1000
	// hoursHorizon is how far ahead NextChange looks.
	hoursHorizon = 400 // days
)

// dayKeys are the keys of HoursConfig.Weekly, indexed by time.Weekday.
var dayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// span is a range of a day, in seconds since the day's (wall clock) midnight: [start, end).
type span struct{ start, end int }

// date is a calendar day.
type date struct {
	y int
	m time.Month
	d int
}

// Hours are a workgroup's opening hours: weekly ranges of wall-clock time
// in a time zone, and whole days closed. The zero value is never open.
// Hours are immutable once parsed and safe for concurrent use.
type Hours struct {
	loc    *time.Location
	weekly [7][]span // by time.Weekday, sorted, not overlapping
	closed map[date]bool
}

// ParseHours checks hc and returns the hours it describes. Each error names
// its key below prefix ("support.workgroups[0].hours", "hours").
func ParseHours(hc HoursConfig, prefix string) (*Hours, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	h := &Hours{loc: time.UTC, closed: map[date]bool{}}
	switch tz := hc.Timezone; {
	case tz == "" || tz == "UTC":
	case tz == "Local" || strings.HasPrefix(tz, "/") || strings.Contains(tz, ".."):
		bad("timezone", "%q is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)", tz)
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			bad("timezone", "%q is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)", tz)
		} else {
			h.loc = loc
		}
	}
	days := make([]string, 0, len(hc.Weekly))
	for k := range hc.Weekly {
		days = append(days, k)
	}
	sort.Strings(days)
	ranges := 0
	for _, k := range days {
		wd := slices.Index(dayKeys[:], k)
		if wd < 0 {
			bad("weekly", "unknown day %q (the days are mon, tue, wed, thu, fri, sat, sun)", k)
			continue
		}
		list := hc.Weekly[k]
		if len(list) > maxRangesPerDay {
			bad("weekly."+k, "at most %d ranges a day", maxRangesPerDay)
			continue
		}
		var spans []span
		ok := true
		for i, r := range list {
			s, err := parseRange(r)
			if err != nil {
				bad(fmt.Sprintf("weekly.%s[%d]", k, i), "%q: %v", r, err)
				ok = false
				continue
			}
			spans = append(spans, s)
		}
		if !ok {
			continue
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				bad("weekly."+k, "the ranges %s and %s overlap", formatSpan(spans[i-1]), formatSpan(spans[i]))
				ok = false
			}
		}
		if ok {
			h.weekly[wd] = spans
			ranges += len(spans)
		}
	}
	if len(errs) == 0 && ranges == 0 {
		bad("weekly", "no opening hours on any day (days absent are closed; for a workgroup that never opens set open: false)")
	}
	if len(hc.ClosedDates) > maxClosedDates {
		bad("closedDates", "at most %d dates", maxClosedDates)
	} else {
		for i, s := range hc.ClosedDates {
			t, err := time.Parse(time.DateOnly, s)
			if err != nil {
				bad(fmt.Sprintf("closedDates[%d]", i), "%q is not a date YYYY-MM-DD", s)
				continue
			}
			h.closed[date{t.Year(), t.Month(), t.Day()}] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return h, nil
}

// parseRange reads "HH:MM-HH:MM" ([start, end), end after start; 24:00 is
// the end of the day).
func parseRange(r string) (span, error) {
	a, b, ok := strings.Cut(r, "-")
	if !ok {
		return span{}, errors.New("expected HH:MM-HH:MM")
	}
	start, err := parseClock(a, false)
	if err != nil {
		return span{}, err
	}
	end, err := parseClock(b, true)
	if err != nil {
		return span{}, err
	}
	if end <= start {
		return span{}, errors.New("the end must be after the start (24:00 is the end of the day)")
	}
	return span{start, end}, nil
}

func parseClock(s string, isEnd bool) (int, error) {
	hs, ms, ok := strings.Cut(s, ":")
	digits := func(v string) bool {
		return len(v) == 2 && !strings.ContainsFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	}
	if !ok || !digits(hs) || !digits(ms) {
		return 0, errors.New("expected HH:MM-HH:MM")
	}
	hh, _ := strconv.Atoi(hs)
	mm, _ := strconv.Atoi(ms)
	switch {
	case hh == 24 && mm == 0 && isEnd:
		return 24 * 3600, nil
	case hh > 23 || mm > 59:
		return 0, fmt.Errorf("%s is not a time of day (00:00 to 23:59, or 24:00 as an end)", s)
	}
	return hh*3600 + mm*60, nil
}

func formatSpan(s span) string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", s.start/3600, s.start%3600/60, s.end/3600, s.end%3600/60)
}

// Location is the hours' time zone.
func (h *Hours) Location() *time.Location {
	if h == nil || h.loc == nil {
		return time.UTC
	}
	return h.loc
}

// Config returns the hours in their written form, normalized (ranges
// sorted, dates sorted and unique, the zone named).
func (h *Hours) Config() HoursConfig {
	hc := HoursConfig{Timezone: h.Location().String(), Weekly: map[string][]string{}}
	if h == nil {
		return hc
	}
	for wd, spans := range h.weekly {
		if len(spans) == 0 {
			continue
		}
		list := make([]string, len(spans))
		for i, s := range spans {
			list[i] = formatSpan(s)
		}
		hc.Weekly[dayKeys[wd]] = list
	}
	for d := range h.closed {
		hc.ClosedDates = append(hc.ClosedDates, fmt.Sprintf("%04d-%02d-%02d", d.y, d.m, d.d))
	}
	sort.Strings(hc.ClosedDates)
	return hc
}

// OpenAt reports whether t falls in the opening hours: its wall-clock
// time in the hours' zone is inside one of its weekday's ranges, and its
// date is not closed.
func (h *Hours) OpenAt(t time.Time) bool {
	if h == nil {
		return false
	}
	lt := t.In(h.Location())
	y, m, d := lt.Date()
	if h.closed[date{y, m, d}] {
		return false
	}
	sec := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	for _, s := range h.weekly[lt.Weekday()] {
		if sec >= s.start && sec < s.end {
			return true
		}
	}
	return false
}

// NextChange returns the first instant after t at which OpenAt differs
// from OpenAt(t): when the workgroup next opens (closed at t) or closes
// (open at t). ok is false when there is none within about a year.
//
// Ranges are wall-clock times: on the day a daylight-saving change skips
// an hour, a range starting in the skipped hour opens at the change; on
// the day it repeats an hour, that hour's times happen twice.
func (h *Hours) NextChange(t time.Time) (next time.Time, ok bool) {
	if h == nil {
		return time.Time{}, false
	}
	loc := h.Location()
	cur := h.OpenAt(t)
	lt := t.In(loc)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 12, 0, 0, 0, time.UTC) // a calendar day, noon avoids any edge
	var cands []time.Time
	for i := -1; i <= hoursHorizon; i++ {
		d := day.AddDate(0, 0, i)
		cands = append(cands, h.candidates(date{d.Year(), d.Month(), d.Day()}, d.Weekday(), loc)...)
		sort.Slice(cands, func(a, b int) bool { return cands[a].Before(cands[b]) })
		// The candidates of the following days come after this bound
		// (the days overlap by a few hours around midnight): those
		// before it are in their final order.
		n := d.AddDate(0, 0, 1)
		bound := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc).Add(-12 * time.Hour)
		for len(cands) > 0 && cands[0].Before(bound) {
			c := cands[0]
			cands = cands[1:]
			if c.After(t) && h.OpenAt(c) != cur {
				return c, true
			}
		}
	}
	for _, c := range cands {
		if c.After(t) && h.OpenAt(c) != cur {
			return c, true
		}
	}
	return time.Time{}, false
}

// NextOpen returns when the hours next open after t (t itself when open).
func (h *Hours) NextOpen(t time.Time) (time.Time, bool) {
	if h.OpenAt(t) {
		return t, true
	}
	return h.NextChange(t)
}

// candidates are the instants of day d at which the state may change: its
// midnight, the starts and ends of its ranges, and the zone's transitions
// (daylight saving) during the day. Between two consecutive candidates the
// wall-clock date and the range the time falls in stay the same.
func (h *Hours) candidates(d date, wd time.Weekday, loc *time.Location) []time.Time {
	var out []time.Time
	m0 := time.Date(d.y, d.m, d.d, 0, 0, 0, 0, loc)
	// The offsets in effect during the day, and the transitions.
	offsets := []int{}
	addOffset := func(t time.Time) {
		if _, off := t.Zone(); !slices.Contains(offsets, off) {
			offsets = append(offsets, off)
		}
	}
	from := m0.Add(-6 * time.Hour)
	addOffset(from)
	limit := m0.Add(30 * time.Hour)
	for z := from; ; {
		_, end := z.ZoneBounds()
		if end.IsZero() || !end.Before(limit) || !end.After(z) {
			break
		}
		out = append(out, end)
		addOffset(end)
		z = end
	}
	// Every instant whose wall clock in loc is d at sec (none in a skipped
	// hour, two in a repeated one).
	wall := func(sec int) {
		base := time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
		for _, off := range offsets {
			u := base.Add(-time.Duration(off) * time.Second)
			lu := u.In(loc)
			if y, m, dd := lu.Date(); y == d.y && m == d.m && dd == d.d && lu.Hour()*3600+lu.Minute()*60+lu.Second() == sec {
				out = append(out, u)
			}
		}
	}
	wall(0)
	for _, s := range h.weekly[wd] {
		wall(s.start)
		if s.end < 24*3600 {
			wall(s.end)
		}
	}
	return out
}

// openAt reports whether w accepts requests at t: its open switch is on and
// t is within its opening hours, if it has any.
func (w Workgroup) openAt(t time.Time) bool {
	return w.Open && (w.Hours == nil || w.Hours.OpenAt(t))
}

// closedMessage says why w refuses a request at t, and when it opens.
func (w Workgroup) closedMessage(t time.Time) string {
	if !w.Open || w.Hours == nil {
		return fmt.Sprintf("workgroup %q is closed", w.Name)
	}
	next, ok := w.Hours.NextChange(t)
	if !ok {
		return fmt.Sprintf("workgroup %q is closed (outside its opening hours, none within a year)", w.Name)
	}
	loc := w.Hours.Location()
	return fmt.Sprintf("workgroup %q is closed (outside its opening hours): it opens at %s (%s)",
		w.Name, next.In(loc).Format(time.RFC3339), loc)
}

// status is g's Status at now; the caller holds the lock.
func (e *Engine) status(g *wgState, now time.Time) Status {
	n := e.availableIn(g)
	st := Status{Workgroup: g.Name, DisplayName: g.DisplayName, Open: g.openAt(now),
		AgentsAvailable: n, QueueLength: len(g.waiting), EstimatedWait: e.estimate(g, len(g.waiting)+1, n),
		Queues: e.queueStatuses(g)}
	if g.Open && g.Hours != nil {
		if next, ok := g.Hours.NextChange(now); ok {
			if st.Open {
				st.ClosesAt = next
			} else {
				st.OpensAt = next
			}
		}
	}
	return st
}

// MarshalJSON writes the hours in their written form (Config), so that a
// Workgroup crosses nodes whole.
func (h *Hours) MarshalJSON() ([]byte, error) { return json.Marshal(h.Config()) }

// UnmarshalJSON reads hours in their written form.
func (h *Hours) UnmarshalJSON(b []byte) error {
	var hc HoursConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return err
	}
	p, err := ParseHours(hc, "hours")
	if err != nil {
		return err
	}
	*h = *p
	return nil
}
