package refbackend

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// schemaV12 adds the offline nudges ECB posted (message.offline, contract
// 1.6): one row per batch, keyed by the event id, so that a retried
// delivery is recorded once. A real backend would send its mobile or web
// push notifications here; this one keeps what it would have sent.
// (Version 11 is the mentions' migration, added beside this one.)
var schemaV12 = execAll(
	`CREATE TABLE offline_nudges (
		seq         INTEGER PRIMARY KEY AUTOINCREMENT,
		event_id    TEXT NOT NULL UNIQUE,
		thread_id   TEXT NOT NULL,
		message_id  TEXT NOT NULL,
		message_ids TEXT NOT NULL,
		count       INTEGER NOT NULL,
		user_ids    TEXT NOT NULL,
		mentioned   TEXT NOT NULL,
		visibility  TEXT NOT NULL DEFAULT '',
		received_at INTEGER NOT NULL
	)`,
	`CREATE INDEX offline_nudges_thread ON offline_nudges(thread_id, seq)`,
)

// storeNudge records a message.offline event in the transaction that
// stores the event itself; a nudge already recorded (same event id) is
// left as it is. It returns the nudge when it was recorded now.
func (s *Server) storeNudge(ctx context.Context, tx *sql.Tx, ev ecbserver.CallbackEvent) (*ecbserver.OfflineNudge, error) {
	var n ecbserver.OfflineNudge
	if err := json.Unmarshal(ev.Data, &n); err != nil || n.ThreadID == "" || n.MessageID == "" {
		return nil, ecbserver.InvalidArgument("message.offline needs data with a threadId and a messageId")
	}
	enc := func(v []string) string {
		if v == nil {
			v = []string{}
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO offline_nudges
		(event_id, thread_id, message_id, message_ids, count, user_ids, mentioned, visibility, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
		ev.ID, n.ThreadID, n.MessageID, enc(n.MessageIDs), n.Count, enc(n.UserIDs), enc(n.Mentioned), n.Visibility,
		s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store offline nudge: %w", err)
	}
	if added, err := res.RowsAffected(); err != nil || added == 0 {
		return nil, err // a retry of a nudge recorded already
	}
	return &n, nil
}

// logNudge says, once per recorded nudge, what a real backend would send
// as push notifications: where a person running the demo sees the nudge.
func (s *Server) logNudge(ctx context.Context, n *ecbserver.OfflineNudge) {
	s.log.LogAttrs(ctx, slog.LevelInfo, "reference backend: a real backend would send push notifications now (message.offline)",
		slog.String("thread", n.ThreadID), slog.Int("messages", n.Count),
		slog.Any("offline", n.UserIDs), slog.Any("mentioned", n.Mentioned))
}

// Nudge is one recorded message.offline batch, as GET /offline lists it.
type Nudge struct {
	EventID string `json:"eventId"`
	ecbserver.OfflineNudge
	ReceivedAt int64 `json:"receivedAt"` // unix ms
}

// NudgesResponse is the answer of GET /offline.
type NudgesResponse struct {
	Nudges []Nudge `json:"nudges"`
}

// handleNudges answers GET /offline?threadId=...: the offline nudges ECB
// posted for that thread, in the order they arrived (at most
// maxCallbacksListed). Like GET /callbacks it is a window for tests and
// for a person trying the demo.
func (s *Server) handleNudges(w http.ResponseWriter, r *http.Request) {
	threadID := r.URL.Query().Get("threadId")
	if threadID == "" {
		writeError(w, ecbserver.InvalidArgument("threadId is required"))
		return
	}
	nudges, err := s.nudgesOf(r.Context(), threadID)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "refbackend: list offline nudges", slog.Any("err", err))
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, NudgesResponse{Nudges: nudges})
}

func (s *Server) nudgesOf(ctx context.Context, threadID string) ([]Nudge, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT event_id, thread_id, message_id, message_ids, count, user_ids, mentioned,
		visibility, received_at FROM offline_nudges WHERE thread_id = ? ORDER BY seq LIMIT ?`, threadID, maxCallbacksListed)
	if err != nil {
		return nil, fmt.Errorf("query offline nudges: %w", err)
	}
	defer rows.Close()
	out := []Nudge{}
	for rows.Next() {
		var n Nudge
		var ids, users, mentioned string
		if err := rows.Scan(&n.EventID, &n.ThreadID, &n.MessageID, &ids, &n.Count, &users, &mentioned, &n.Visibility, &n.ReceivedAt); err != nil {
			return nil, fmt.Errorf("scan offline nudge: %w", err)
		}
		for _, f := range []struct {
			raw string
			dst *[]string
		}{{ids, &n.MessageIDs}, {users, &n.UserIDs}, {mentioned, &n.Mentioned}} {
			if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
				return nil, fmt.Errorf("decode offline nudge: %w", err)
			}
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query offline nudges: %w", err)
	}
	return out, nil
}
