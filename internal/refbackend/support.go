package refbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// CreateSupportThread creates the thread of an accepted support request
// (contract 1.2): the agent (who must be a member of the workgroup here too)
// and the visitor are its members with read and write access, the question
// is its subject (cut to the subject limit). The request id is the
// idempotency key: a repeated call answers the thread the first one created.
// The visitor must be a known user, or an anonymous visitor (req.Anonymous),
// who is then stored as a visitor row with the name ECB passes.
func (b *ecbBackend) CreateSupportThread(ctx context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	subject := []rune(req.Question)
	if len(subject) > maxSubjectRunes {
		subject = subject[:maxSubjectRunes]
	}
	key := "support:" + req.RequestID

	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create support thread: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if err := b.requireUser(ctx, tx, req.AgentID); err != nil {
		return nil, err
	}
	// An anonymous visitor (a token from POST /visitor, or any anonymous
	// token ECB accepted) becomes a visitor row here; a known visitor must
	// be a user.
	if req.Anonymous {
		err = b.ensureVisitor(ctx, tx, req.VisitorID, req.VisitorName)
	} else {
		err = b.requireUser(ctx, tx, req.VisitorID)
	}
	if err != nil {
		return nil, err
	}
	var member int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workgroup_members WHERE workgroup = ? AND user_id = ?`,
		req.Workgroup, req.AgentID).Scan(&member); err != nil {
		return nil, fmt.Errorf("create support thread: workgroup: %w", err)
	}
	if member == 0 {
		return nil, ecbserver.Forbidden(strconv.Quote(req.AgentID) + " is not an agent of workgroup " + strconv.Quote(req.Workgroup))
	}
	var threadID string
	err = tx.QueryRowContext(ctx, `SELECT id FROM threads WHERE created_by = ? AND create_key = ?`, req.AgentID, key).Scan(&threadID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		now := b.s.now().UnixMilli()
		threadID = randomID("t")
		if _, err := tx.ExecContext(ctx, `INSERT INTO threads(id, subject, created_by, create_key, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)`, threadID, string(subject), req.AgentID, key, now, now); err != nil {
			return nil, fmt.Errorf("create support thread: %w", err)
		}
		// The visitor first: a support thread is the visitor's conversation.
		// The agent is also an admin: ECB adds a supervisor who joins, or
		// the agent a chat is transferred to, on their behalf.
		for _, u := range []string{req.VisitorID, req.AgentID} {
			acc := memberAccess
			if u == req.AgentID {
				acc |= ecbserver.AccessAdmin
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id, user_id, access) VALUES (?, ?, ?)`,
				threadID, u, acc); err != nil {
				return nil, fmt.Errorf("create support thread: add %s: %w", u, err)
			}
		}
	case err != nil:
		return nil, fmt.Errorf("create support thread: look up key: %w", err)
	}
	th, err := b.loadThread(ctx, tx, threadID)
	if err != nil {
		return nil, fmt.Errorf("create support thread: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create support thread: commit: %w", err)
	}
	vt, err := b.threadToken(th, req.VisitorID, memberAccess)
	if err != nil {
		return nil, err
	}
	// The agent's token says what the thread says of them: admin too.
	at, err := b.threadToken(th, req.AgentID, memberAccess|ecbserver.AccessAdmin)
	if err != nil {
		return nil, err
	}
	return &ecbserver.CreateSupportThreadResponse{Thread: *th, VisitorToken: vt, AgentToken: at}, nil
}
