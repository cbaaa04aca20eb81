package refbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// lockedBuffer is a log destination the handlers' goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (e *env) nudges(threadID string) []Nudge {
	e.tb.Helper()
	r := e.web(http.MethodGet, "/offline?threadId="+threadID, nil, nil)
	if r.status != http.StatusOK {
		e.tb.Fatalf("GET /offline: %d %s", r.status, r.body)
	}
	var out NudgesResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.tb.Fatal(err)
	}
	return out.Nudges
}

// A message.offline that ECB's Poster retries (the backend stored it, but
// its answer was lost: here a 500 after the real handler ran) is recorded
// once, with what the batch carried; GET /offline lists a thread's nudges.
func TestOfflineNudgeRecordedOnceWhenRetried(t *testing.T) {
	e := newEnv(t)
	var logged lockedBuffer // what a person running the demo sees
	e.srv.log = slog.New(slog.NewTextHandler(&logged, nil))
	var attempts atomic.Int32
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, r)
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError) // stored, but ECB does not learn it
			return
		}
		w.WriteHeader(rec.Code)
	}))
	t.Cleanup(lossy.Close)
	p := callbacks.New(t.Context(), callbacks.Config{URL: lossy.URL + ContractPrefix + ecbserver.PathCallbacks, Secret: e.secret,
		InitialBackoff: 10 * time.Millisecond})
	nudge := ecbserver.OfflineNudge{ThreadID: "t_1", MessageID: "m_2", MessageIDs: []string{"m_1", "m_2"}, Count: 2,
		UserIDs: []string{"bob", "carol"}, Mentioned: []string{"carol"}}
	data, err := json.Marshal(nudge)
	if err != nil {
		t.Fatal(err)
	}
	p.Post("offline/1", callbacks.Event{ID: "ev_off_m_2", Type: callbacks.TypeMessageOffline, ThreadID: "t_1", Data: data})
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := attempts.Load(); n != 2 {
		t.Fatalf("%d deliveries, want 2 (one retry)", n)
	}
	got := e.nudges("t_1")
	if len(got) != 1 {
		t.Fatalf("%d nudges recorded, want 1: %+v", len(got), got)
	}
	if g := got[0]; g.EventID != "ev_off_m_2" || g.MessageID != "m_2" || !slices.Equal(g.MessageIDs, nudge.MessageIDs) ||
		g.Count != 2 || !slices.Equal(g.UserIDs, nudge.UserIDs) || !slices.Equal(g.Mentioned, nudge.Mentioned) || g.ReceivedAt == 0 {
		t.Fatalf("recorded %+v", g)
	}
	if n := strings.Count(logged.String(), "would send push notifications"); n != 1 {
		t.Fatalf("the nudge was logged %d times, want once:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "offline=\"[bob carol]\"") {
		t.Fatalf("the log line does not name the offline members:\n%s", logged.String())
	}
	if n := len(e.nudges("t_other")); n != 0 {
		t.Fatalf("another thread: %d nudges", n)
	}
	// A message.offline without its data is refused (400), and nothing is stored.
	if st := e.postEvent(ecbserver.CallbackEvent{ID: "ev_off_bad", Type: ecbserver.CallbackMessageOffline, At: time.Now()}, e.secret); st != http.StatusBadRequest {
		t.Fatalf("message.offline without data: %d", st)
	}
	var n int
	if err := e.srv.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM callbacks WHERE id = 'ev_off_bad'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused event was stored: %d %v", n, err)
	}
	if r := e.web(http.MethodGet, "/offline", nil, nil); r.status != http.StatusBadRequest {
		t.Fatalf("GET /offline without threadId: %d", r.status)
	}
}

// A version left free (11, the mentions' migration, lands on another
// branch) is applied when it appears later, after a higher one.
func TestMigrationGapFilledLater(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := openDB(ctx, filepath.Join(t.TempDir(), "gap.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	step := func(v int, table string) migration {
		return migration{v, table, execAll(`CREATE TABLE ` + table + ` (x INTEGER)`)}
	}
	if err := migrate(ctx, db, []migration{step(1, "a"), step(3, "c")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, []migration{step(1, "a"), step(2, "b"), step(3, "c")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := db.QueryRowContext(ctx, `SELECT name FROM schema_migrations WHERE version = 2`).Scan(&name); err != nil || name != "b" {
		t.Fatalf("version 2: %q %v", name, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO b (x) VALUES (1)`); err != nil {
		t.Fatalf("table b: %v", err)
	}
	if err := migrate(ctx, db, []migration{step(1, "a"), step(3, "c"), step(2, "b")}, time.Now()); err == nil {
		t.Fatal("migrations out of order were accepted")
	}
}
