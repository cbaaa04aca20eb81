package refbackend

// The optional calls of contract 1.4: public threads (ecbserver.PublicThreads)
// and moderation (ecbserver.Moderator). A thread's creator holds the owner
// bit; agents of a support thread hold admin. The seeded public thread
// "Lobby" (migration 8) has no members until someone joins it.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

var (
	_ ecbserver.PublicThreads = (*ecbBackend)(nil)
	_ ecbserver.Moderator     = (*ecbBackend)(nil)
)

// LobbyID is the id of the public thread migration 8 seeds.
const LobbyID = "t_lobby"

// schemaV8 adds public threads, a thread's data, deleted messages, and seeds
// the public thread "Lobby" that no demo user is a member of. Its creator
// row points at the supervisor, who is no member either.
var schemaV8 = execAll(
	`ALTER TABLE threads ADD COLUMN public INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE threads ADD COLUMN data TEXT`,
	`ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0`,
	`INSERT INTO threads(id, subject, created_by, created_at, updated_at, public)
		SELECT '`+LobbyID+`', 'Lobby', 'super', CAST(strftime('%s','now') AS INTEGER) * 1000, CAST(strftime('%s','now') AS INTEGER) * 1000, 1
		WHERE EXISTS (SELECT 1 FROM users WHERE id = 'super')`,
)

// JoinThread makes the caller a member of a public thread.
func (b *ecbBackend) JoinThread(ctx context.Context, req *ecbserver.JoinThreadRequest) (*ecbserver.JoinThreadResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("join thread: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if err := b.requireUser(ctx, tx, req.UserID); err != nil {
		return nil, err
	}
	var public bool
	err = tx.QueryRowContext(ctx, `SELECT public FROM threads WHERE id = ?`, req.ThreadID).Scan(&public)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ecbserver.NotFound("no thread " + strconv.Quote(req.ThreadID))
	}
	if err != nil {
		return nil, fmt.Errorf("join thread %s: %w", req.ThreadID, err)
	}
	acc, member, err := accessOf(ctx, tx, req.ThreadID, req.UserID)
	if err != nil {
		return nil, err
	}
	joined := false
	switch {
	case member && acc == ecbserver.AccessNone:
		return nil, ecbserver.Forbidden("you are banned from this thread")
	case member:
	case !public:
		return nil, ecbserver.Forbidden("this thread is not public: a member must add you")
	default:
		var members int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM thread_members WHERE thread_id = ? AND access != 0`,
			req.ThreadID).Scan(&members); err != nil {
			return nil, fmt.Errorf("join thread %s: count members: %w", req.ThreadID, err)
		}
		if members >= maxMembers {
			return nil, ecbserver.Conflict(fmt.Sprintf("a thread has at most %d members", maxMembers))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id, user_id, access, read_seq)
			VALUES (?1, ?2, ?3, COALESCE((SELECT MAX(seq) FROM messages WHERE thread_id = ?1), 0))`,
			req.ThreadID, req.UserID, memberAccess); err != nil {
			return nil, fmt.Errorf("join thread %s: %w", req.ThreadID, err)
		}
		acc, joined = memberAccess, true
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("join thread: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("join thread %s: commit: %w", req.ThreadID, err)
	}
	tok, err := b.threadToken(th, req.UserID, acc)
	if err != nil {
		return nil, err
	}
	return &ecbserver.JoinThreadResponse{Thread: *th, ThreadToken: tok, Joined: joined}, nil
}

// GetPublicThreads lists every public thread, newest activity first.
func (b *ecbBackend) GetPublicThreads(ctx context.Context, req *ecbserver.GetPublicThreadsRequest) (*ecbserver.GetPublicThreadsResponse, error) {
	if err := b.requireUser(ctx, b.s.db, req.UserID); err != nil {
		return nil, err
	}
	rows, err := b.s.db.QueryContext(ctx, `SELECT id FROM threads WHERE public = 1 ORDER BY updated_at DESC, rowid DESC LIMIT ?`, maxPageSize)
	if err != nil {
		return nil, fmt.Errorf("public threads: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("public threads: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("public threads: %w", err)
	}
	out := &ecbserver.GetPublicThreadsResponse{Threads: make([]ecbserver.Thread, 0, len(ids))}
	for _, id := range ids {
		th, err := b.loadThread(ctx, b.s.db, id)
		if err != nil {
			return nil, fmt.Errorf("public threads: %w", err)
		}
		out.Threads = append(out.Threads, *th)
	}
	return out, nil
}

const moderatorBits = ecbserver.AccessAdmin | ecbserver.AccessOwner

// RemoveParticipant takes a member out of a thread on behalf of an admin or
// the owner. Their row goes, as with leaveThread: an admin may add them back.
func (b *ecbBackend) RemoveParticipant(ctx context.Context, req *ecbserver.RemoveParticipantRequest) (*ecbserver.RemoveParticipantResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("remove participant: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, moderatorBits, "only an admin or the owner of this thread may remove members"); err != nil {
		return nil, err
	}
	pacc, member, err := accessOf(ctx, tx, req.ThreadID, req.ParticipantID)
	if err != nil {
		return nil, err
	}
	switch {
	case !member || pacc == ecbserver.AccessNone:
		return nil, ecbserver.NotFound(strconv.Quote(req.ParticipantID) + " is not a member of this thread")
	case pacc&ecbserver.AccessOwner != 0:
		return nil, ecbserver.Forbidden("the owner of a thread cannot be removed")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM thread_members WHERE thread_id = ? AND user_id = ?`, req.ThreadID, req.ParticipantID); err != nil {
		return nil, fmt.Errorf("remove %s from %s: %w", req.ParticipantID, req.ThreadID, err)
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("remove participant: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("remove participant from %s: commit: %w", req.ThreadID, err)
	}
	return &ecbserver.RemoveParticipantResponse{Thread: *th}, nil
}

// UpdateThread sets a thread's subject and data on behalf of an admin or
// the owner.
func (b *ecbBackend) UpdateThread(ctx context.Context, req *ecbserver.UpdateThreadRequest) (*ecbserver.UpdateThreadResponse, error) {
	if req.Subject != nil && utf8.RuneCountInString(*req.Subject) > maxSubjectRunes {
		return nil, ecbserver.InvalidArgument(fmt.Sprintf("subject is longer than %d characters", maxSubjectRunes))
	}
	if err := checkData(req.Data); err != nil {
		return nil, err
	}
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update thread: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, moderatorBits, "only an admin or the owner of this thread may change it"); err != nil {
		return nil, err
	}
	now := b.s.now().UnixMilli()
	if req.Subject != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE threads SET subject = ?, updated_at = ? WHERE id = ?`, *req.Subject, now, req.ThreadID); err != nil {
			return nil, fmt.Errorf("update thread %s: %w", req.ThreadID, err)
		}
	}
	if len(req.Data) > 0 {
		var col any // JSON null clears
		if string(req.Data) != "null" {
			col = string(req.Data)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE threads SET data = ?, updated_at = ? WHERE id = ?`, col, now, req.ThreadID); err != nil {
			return nil, fmt.Errorf("update thread %s: %w", req.ThreadID, err)
		}
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("update thread: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update thread %s: commit: %w", req.ThreadID, err)
	}
	return &ecbserver.UpdateThreadResponse{Thread: *th}, nil
}

// DeleteMessage blanks a message and marks it deleted, on behalf of its
// author (still a member) or of an admin or the owner.
func (b *ecbBackend) DeleteMessage(ctx context.Context, req *ecbserver.DeleteMessageRequest) (*ecbserver.DeleteMessageResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("delete message: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	const anyAccess = ecbserver.AccessRead | ecbserver.AccessWrite | moderatorBits
	acc, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, anyAccess, "you are not a member of this thread")
	if err != nil {
		return nil, err
	}
	var author string
	err = tx.QueryRowContext(ctx, `SELECT author_id FROM messages WHERE id = ? AND thread_id = ?`, req.MessageID, req.ThreadID).Scan(&author)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ecbserver.NotFound("no message " + strconv.Quote(req.MessageID) + " in this thread")
	}
	if err != nil {
		return nil, fmt.Errorf("delete message %s: %w", req.MessageID, err)
	}
	if author != req.UserID && acc&moderatorBits == 0 {
		return nil, ecbserver.Forbidden("only its author or an admin of this thread may delete a message")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET body = '', data = NULL, deleted = 1 WHERE id = ?`, req.MessageID); err != nil {
		return nil, fmt.Errorf("delete message %s: %w", req.MessageID, err)
	}
	m, err := scanMessage(tx.QueryRowContext(ctx, messageColumns+` WHERE id = ?`, req.MessageID))
	if err != nil {
		return nil, fmt.Errorf("delete message %s: read back: %w", req.MessageID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE message_id = ?`, req.MessageID); err != nil {
		return nil, fmt.Errorf("delete message %s: reactions: %w", req.MessageID, err)
	}
	decorated := []ecbserver.Message{*m}
	if err := decorate(ctx, tx, req.UserID, decorated); err != nil {
		return nil, fmt.Errorf("delete message %s: %w", req.MessageID, err)
	}
	m = &decorated[0]
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("delete message %s: commit: %w", req.MessageID, err)
	}
	return &ecbserver.DeleteMessageResponse{Message: *m}, nil
}

// DeleteThread deletes a thread, its members and its messages, on behalf of
// its owner.
func (b *ecbBackend) DeleteThread(ctx context.Context, req *ecbserver.DeleteThreadRequest) (*ecbserver.DeleteThreadResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("delete thread: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, ecbserver.AccessOwner, "only the owner of this thread may delete it"); err != nil {
		return nil, err
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("delete thread: %w", err)
	}
	// The members and the messages go with it (ON DELETE CASCADE).
	if _, err := tx.ExecContext(ctx, `DELETE FROM threads WHERE id = ?`, req.ThreadID); err != nil {
		return nil, fmt.Errorf("delete thread %s: %w", req.ThreadID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("delete thread %s: commit: %w", req.ThreadID, err)
	}
	return &ecbserver.DeleteThreadResponse{Thread: *th}, nil
}

// threadData reads the data column of a thread row.
func threadData(col sql.NullString) json.RawMessage {
	if !col.Valid {
		return nil
	}
	return json.RawMessage(col.String)
}
