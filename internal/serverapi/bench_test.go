package serverapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/serverapi"
)

// sink is a listener that takes every push and keeps none.
type sink struct{ n int } // not of size zero: each one has its own address

func (*sink) Deliver(*hub.Push) bool { return true }
func (*sink) Close(hub.Reason)       {}

// nullWriter is the smallest http.ResponseWriter: the cost measured is the
// API's, not a recorder's.
type nullWriter struct {
	h      http.Header
	status int
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkPublish is one POST /server/v1/threads/{id}/messages through the
// API's handler, in process, to a thread of 10 listeners that take every push
// (the 100x10 shape of `ecb bench stepped`, without the sockets): the
// per-publish work of the Server API. log=warn is the level of the stepped
// benchmark, log=info the default level of `ecb serve` (JSON, discarded).
func BenchmarkPublish(b *testing.B) {
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
		b.Run("log="+strings.ToLower(level.String()), func(b *testing.B) {
			h := hub.New(hub.Config{})
			svc := ops.New(ops.Config{MaxMessageBytes: 4096}, nil, nil, h, slog.New(slog.DiscardHandler), nil)
			store := access.New(access.Config{MaxEntries: 50})
			svc.SetGuards(ops.Guards{Access: store, Threads: store, Revocations: store})
			log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))
			api := serverapi.New(serverapi.Config{Keys: serverapi.Keys{{Name: "backend", Key: allKey, Scopes: []string{"*"}}}},
				serverapi.Options{Ops: svc, Store: store, Hub: h, Logger: log})
			for i := range 10 {
				c := &sink{n: i}
				h.Register(c, "u")
				if _, err := h.Attach(context.Background(), "t1", c); err != nil {
					b.Fatal(err)
				}
			}
			if n := h.Listeners("t1"); n != 10 {
				b.Fatalf("%d listeners", n)
			}
			body := `{"body":"` + strings.Repeat("x", 200) + `"}`
			req, _ := http.NewRequest("POST", "http://ecb/server/v1/threads/t1/messages", nil)
			req.Header.Set("Authorization", "Bearer "+allKey)
			req.Header.Set("Content-Type", "application/json")
			b.ReportAllocs()
			for b.Loop() {
				r := req.Clone(context.Background())
				r.Body = io.NopCloser(strings.NewReader(body))
				r.ContentLength = int64(len(body))
				w := &nullWriter{h: http.Header{}}
				api.ServeHTTP(w, r)
				if w.status != http.StatusCreated {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
