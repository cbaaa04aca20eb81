package server_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/redistest"
)

const dashboardFile = "../../deploy/grafana/ecb-dashboard.json"

// promqlFunctions are the PromQL functions and aggregations the dashboard
// may use; any other identifier followed by "(" is refused as unknown.
var promqlFunctions = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "topk": true, "bottomk": true,
	"rate": true, "irate": true, "increase": true, "delta": true, "deriv": true, "histogram_quantile": true,
	"clamp_min": true, "clamp_max": true, "abs": true, "absent": true, "changes": true, "resets": true,
	"avg_over_time": true, "max_over_time": true, "min_over_time": true, "label_values": true,
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	labelValues  = regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,`)
)

// metricNames returns the metric names a PromQL expression reads. An
// unknown function is an error, so that a name is never taken for one.
func metricNames(tb testing.TB, expr string) []string {
	tb.Helper()
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	e := promStrings.ReplaceAllString(expr, " ")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, m := range promIdent.FindAllString(e, -1) {
		name := strings.TrimSpace(strings.TrimSuffix(m, "("))
		if strings.HasSuffix(m, "(") {
			if !promqlFunctions[name] {
				tb.Errorf("%q: unknown PromQL function %s", expr, name)
			}
			continue
		}
		out = append(out, name)
	}
	return out
}

// dashboardExprs returns every PromQL expression of the dashboard: its
// panels' targets (rows' nested panels too) and its query variables.
func dashboardExprs(tb testing.TB) []string {
	tb.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		tb.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		tb.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				tb.Fatalf("%s: panel: %v", dashboardFile, err)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					tb.Errorf("panel %q has a target without expr", p.Title)
				}
				exprs = append(exprs, t.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			exprs = append(exprs, q)
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	return exprs
}

// scrape returns the sample names /metrics exports (the histograms'
// _bucket, _sum and _count as they appear).
func scrape(tb testing.TB, url string) map[string]bool {
	tb.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return names
}

// TestDashboardMetricsAreExported: every metric the Grafana dashboard
// queries is exported by a real node's /metrics, and every ecb_* metric a
// node exports is on the dashboard. The node runs in cluster mode (for
// ecb_cluster_ready) on the real Redis, on the reference backend, and the
// test drives the events after which the labelled metrics appear: an
// operation and its backend calls, and a support callback that fails.
func TestDashboardMetricsAreExported(t *testing.T) {
	redisURL := redistest.URL(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer refusing.Close()
	n := startNode(t, "cluster.redisURL="+redisURL, "cluster.prefix="+redistest.Prefix(t, redisURL, "dashboard"),
		"callbacks.url="+refusing.URL, "callbacks.maxRetryDuration=50ms")
	tok := n.userToken(t, "alice")
	do(t, http.MethodGet, n.URL+"/v1/contacts", tok, nil, nil)
	// support.requested is posted to a backend that refuses it: given up
	// after callbacks.maxRetryDuration, it is counted.
	// In cluster mode a node routes once it holds the routing lease (or
	// knows who does): unavailable until then.
	for deadline := time.Now().Add(15 * time.Second); ; {
		status, body := tryPost(t, n.URL+"/v1/ops/support.ask", tok, map[string]string{"workgroup": "support", "question": "help"})
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("support.ask: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var got map[string]bool
	for deadline := time.Now().Add(15 * time.Second); ; {
		got = scrape(t, n.URL)
		if got["ecb_callbacks_failed_total"] || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	exprs := dashboardExprs(t)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricNames(t, e) {
			used[name] = true
			if !got[name] {
				t.Errorf("the dashboard queries %s (in %q), which /metrics does not export", name, e)
			}
		}
	}
	if len(exprs) < 20 || len(used) < 15 {
		t.Fatalf("found %d expressions reading %d metrics in %s: the parse missed them", len(exprs), len(used), dashboardFile)
	}
	base := func(name string) string {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, s); ok && got[b+"_bucket"] {
				return b
			}
		}
		return name
	}
	onDashboard := map[string]bool{}
	for name := range used {
		onDashboard[base(name)] = true
	}
	var missing []string
	for name := range got {
		if strings.HasPrefix(name, "ecb_") && !onDashboard[base(name)] {
			missing = append(missing, base(name))
		}
	}
	slices.Sort(missing)
	if missing = slices.Compact(missing); len(missing) > 0 {
		t.Errorf("/metrics exports %v, which %s does not show: add a panel", missing, dashboardFile)
	}
}

// TestMetricNamesParse: the parse finds the names, and not the labels,
// functions, ranges or variables around them.
func TestMetricNamesParse(t *testing.T) {
	got := metricNames(t, `histogram_quantile(0.99, sum by (le, op) (rate(ecb_operation_duration_seconds_bucket{instance=~"$instance",x="a{b}"}[$__rate_interval]))) / on(instance) go_goroutines`)
	if want := []string{"ecb_operation_duration_seconds_bucket", "go_goroutines"}; !slices.Equal(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	if got := metricNames(t, "label_values(ecb_connections, instance)"); !slices.Equal(got, []string{"ecb_connections"}) {
		t.Errorf("label_values: %v", got)
	}
}
