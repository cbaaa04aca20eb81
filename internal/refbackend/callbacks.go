package refbackend

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// maxCallbacksListed bounds what GET /callbacks returns for one request.
const maxCallbacksListed = 1000

// storeCallback records an event ECB posted to POST /ecb/v1/callbacks. An
// event already stored (same id: a retry whose answer ECB did not see) is
// ignored, so every event is kept once, at its first arrival. A
// message.offline is also recorded as a nudge (offline.go), in the same
// transaction.
func (s *Server) storeCallback(ctx context.Context, ev ecbserver.CallbackEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode callback: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store callback: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `INSERT INTO callbacks (id, type, request_id, body, received_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		ev.ID, ev.Type, ev.RequestID, string(body), s.now().UnixMilli()); err != nil {
		return fmt.Errorf("store callback: %w", err)
	}
	var nudge *ecbserver.OfflineNudge
	if ev.Type == ecbserver.CallbackMessageOffline {
		if nudge, err = s.storeNudge(ctx, tx, ev); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store callback: %w", err)
	}
	if nudge != nil {
		s.logNudge(ctx, nudge)
	}
	return nil
}

// CallbacksResponse is the answer of GET /callbacks.
type CallbacksResponse struct {
	Events []ecbserver.CallbackEvent `json:"events"`
}

// handleCallbacks answers GET /callbacks?requestId=...: the events ECB posted
// about that support request, in the order they arrived (at most
// maxCallbacksListed). It is a window for tests and for a person trying the
// demo; a real backend would not publish its callbacks.
func (s *Server) handleCallbacks(w http.ResponseWriter, r *http.Request) {
	requestID := r.URL.Query().Get("requestId")
	if requestID == "" {
		writeError(w, ecbserver.InvalidArgument("requestId is required"))
		return
	}
	events, err := s.callbacksOf(r.Context(), requestID)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "refbackend: list callbacks", slog.Any("err", err))
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, CallbacksResponse{Events: events})
}

func (s *Server) callbacksOf(ctx context.Context, requestID string) ([]ecbserver.CallbackEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM callbacks WHERE request_id = ? ORDER BY seq LIMIT ?`,
		requestID, maxCallbacksListed)
	if err != nil {
		return nil, fmt.Errorf("query callbacks: %w", err)
	}
	defer rows.Close()
	events := []ecbserver.CallbackEvent{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("scan callback: %w", err)
		}
		var ev ecbserver.CallbackEvent
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			return nil, fmt.Errorf("decode callback: %w", err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query callbacks: %w", err)
	}
	return events, nil
}
