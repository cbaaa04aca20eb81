package refbackend

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// BenchmarkStore measures the reference backend's typical calls against the
// SQLite driver compiled in (driver_*.go, chosen by build tags).
// bench/sqlite/run.sh runs it for each driver, alternating, and prints JSON
// lines. The calls go straight to the
// contract methods: the HTTP and signature layers do not depend on the driver.
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	b.Run("open-migrate", func(b *testing.B) {
		// Maintenance: open a fresh file and apply every migration (the demo's
		// first start), then close it.
		dir := b.TempDir()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e := newEnvAt(b, filepath.Join(dir, strconv.Itoa(i)+".db"))
			e.stop()
		}
	})

	e := newEnv(b)
	be := &ecbBackend{e.srv}
	th, err := be.CreateThread(ctx, &ecbserver.CreateThreadRequest{
		UserID: "alice", Participants: []string{"bob"}, Message: ecbserver.NewMessage{Body: "hello", ClientMessageID: "c0"}})
	if err != nil {
		b.Fatal(err)
	}
	threadID := th.Thread.ID
	// alice has 50 threads with 500 messages in the first one.
	for i := range 49 {
		if _, err := be.CreateThread(ctx, &ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"carol"},
			Subject: fmt.Sprint("t", i), Message: ecbserver.NewMessage{Body: "hi", ClientMessageID: fmt.Sprint("t", i)}}); err != nil {
			b.Fatal(err)
		}
	}
	var lastID string
	send := func(i int) {
		m, err := be.AddThreadMessage(ctx, &ecbserver.AddThreadMessageRequest{UserID: "alice", ThreadID: threadID,
			Body: "a message of a typical length, with a few words in it", ClientMessageID: fmt.Sprint("m", i)})
		if err != nil {
			b.Fatal(err)
		}
		lastID = m.Message.ID
	}
	for i := range 500 {
		send(i)
	}
	n := 500

	b.Run("send-message", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			send(n)
			n++
		}
	})
	b.Run("history-page", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r, err := be.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: "bob", ThreadID: threadID, Limit: 50})
			if err != nil || len(r.Messages) != 50 {
				b.Fatal(err, len(r.Messages))
			}
		}
	})
	b.Run("thread-list", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r, err := be.GetThreads(ctx, &ecbserver.GetThreadsRequest{UserID: "alice"})
			if err != nil || len(r.Threads) != 50 {
				b.Fatal(err, len(r.Threads))
			}
		}
	})
	b.Run("mark-read", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := be.MarkRead(ctx, &ecbserver.MarkReadRequest{UserID: "bob", ThreadID: threadID, MessageID: lastID}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
