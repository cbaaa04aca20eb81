package refbackend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LoadThread is one thread that SeedLoad creates: its id, its members (the
// first is the creator), all with access 3 (read, write).
type LoadThread struct {
	ID      string
	Members []string
}

// SeedLoad creates users (with no usable password: they log in with tokens
// only) and threads with their members, in one transaction, for a load test
// (`ecb bench stepped`). Unlike addParticipants it does not cap a thread's
// members: a load test's thread of 1,000 listeners has 1,001. Users and
// threads that exist already are an error.
func (s *Server) SeedLoad(ctx context.Context, users []string, threads []LoadThread) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed load: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMilli()
	for _, u := range users {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users(id, name, password_hash, password_salt, password_iter) VALUES (?, ?, x'', x'', 1)`, u, u); err != nil {
			return fmt.Errorf("seed load: user %s: %w", u, err)
		}
	}
	for _, t := range threads {
		if len(t.Members) == 0 {
			return errors.New("seed load: a thread needs a member")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO threads(id, subject, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, "load "+t.ID, t.Members[0], now, now); err != nil {
			return fmt.Errorf("seed load: thread %s: %w", t.ID, err)
		}
		for _, m := range t.Members {
			if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id, user_id, access) VALUES (?, ?, 3)`, t.ID, m); err != nil {
				return fmt.Errorf("seed load: member %s of %s: %w", m, t.ID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed load: %w", err)
	}
	return nil
}
