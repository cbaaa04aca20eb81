package ecbserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func TestCallbackHandler(t *testing.T) {
	secret := []byte("callback-secret")
	var got []ecbserver.CallbackEvent
	var fail error
	h := ecbserver.NewCallbackHandler(secret, func(_ context.Context, ev ecbserver.CallbackEvent) error {
		if fail != nil {
			return fail
		}
		got = append(got, ev)
		return nil
	}, ecbserver.CallbackHandlerOptions{MaxBodyBytes: 512, Logger: slog.New(slog.DiscardHandler)})

	post := func(method, body string, key []byte) int {
		req := httptest.NewRequest(method, ecbserver.PathCallbacks, strings.NewReader(body))
		if key != nil {
			ecbserver.SignRequest(key, req, []byte(body), time.Now())
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	ev := `{"id":"ev_1","type":"offer.rejected","at":"2026-01-02T03:04:05Z","operationId":"op","requestId":"rq","userId":"agent1","data":{"offerId":"off_1"}}`
	cases := []struct {
		name   string
		method string
		body   string
		key    []byte
		fail   error
		want   int
	}{
		{"ok", http.MethodPost, ev, secret, nil, http.StatusNoContent},
		{"get", http.MethodGet, "", secret, nil, http.StatusMethodNotAllowed},
		{"unsigned", http.MethodPost, ev, nil, nil, http.StatusUnauthorized},
		{"wrong secret", http.MethodPost, ev, []byte("other"), nil, http.StatusUnauthorized},
		{"too large", http.MethodPost, `{"id":"` + strings.Repeat("x", 600) + `"}`, secret, nil, http.StatusRequestEntityTooLarge},
		{"not json", http.MethodPost, `{`, secret, nil, http.StatusBadRequest},
		{"no type", http.MethodPost, `{"id":"ev_2"}`, secret, nil, http.StatusBadRequest},
		{"refused", http.MethodPost, ev, secret, ecbserver.Conflict("no"), http.StatusConflict},
		{"broken", http.MethodPost, ev, secret, errors.New("db down"), http.StatusInternalServerError},
	}
	for _, c := range cases {
		fail = c.fail
		if code := post(c.method, c.body, c.key); code != c.want {
			t.Errorf("%s: status %d, want %d", c.name, code, c.want)
		}
	}
	if len(got) != 1 {
		t.Fatalf("handled %d events", len(got))
	}
	e := got[0]
	if e.ID != "ev_1" || e.Type != ecbserver.CallbackOfferRejected || e.OperationID != "op" || e.RequestID != "rq" ||
		e.UserID != "agent1" || !e.At.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("event %+v", e)
	}
	var data struct{ OfferID string }
	if err := json.Unmarshal(e.Data, &data); err != nil || data.OfferID != "off_1" {
		t.Fatalf("data %s", e.Data)
	}
}
