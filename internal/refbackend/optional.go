package refbackend

// The optional calls of contract 1.1: read marks (ecbserver.ReadMarker) and
// members that change after creation (ecbserver.ParticipantManager).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// maxMembers caps a thread's members: the creator and maxParticipants others,
// whether they came with createThread or later with addParticipants.
const maxMembers = maxParticipants + 1

// MarkRead moves the caller's read mark forward to req.MessageID.
func (b *ecbBackend) MarkRead(ctx context.Context, req *ecbserver.MarkReadRequest) (*ecbserver.MarkReadResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("mark read: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, ecbserver.AccessRead, "you may not read this thread"); err != nil {
		return nil, err
	}
	// A message of another thread is "not in this thread", as an unknown one:
	// the answer tells nothing about threads the caller may not see.
	var seq int64
	err = tx.QueryRowContext(ctx, `SELECT seq FROM messages WHERE id = ? AND thread_id = ?`, req.MessageID, req.ThreadID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ecbserver.NotFound("no message " + strconv.Quote(req.MessageID) + " in this thread")
	}
	if err != nil {
		return nil, fmt.Errorf("mark read in %s: look up message: %w", req.ThreadID, err)
	}
	// MAX keeps the mark from moving back, atomically with concurrent marks.
	if _, err := tx.ExecContext(ctx, `UPDATE thread_members SET read_seq = MAX(read_seq, ?) WHERE thread_id = ? AND user_id = ?`,
		seq, req.ThreadID, req.UserID); err != nil {
		return nil, fmt.Errorf("mark read in %s: %w", req.ThreadID, err)
	}
	var (
		markSeq int64
		markID  string
	)
	// The mark is the newest message at or before read_seq: the one just
	// marked, or a later one when the mark was already past it.
	if err := tx.QueryRowContext(ctx, `SELECT m.seq, m.id FROM thread_members tm JOIN messages m
		ON m.thread_id = tm.thread_id AND m.seq <= tm.read_seq
		WHERE tm.thread_id = ? AND tm.user_id = ? ORDER BY m.seq DESC LIMIT 1`,
		req.ThreadID, req.UserID).Scan(&markSeq, &markID); err != nil {
		return nil, fmt.Errorf("mark read in %s: read the mark back: %w", req.ThreadID, err)
	}
	unread, err := countUnread(ctx, tx, req.ThreadID, req.UserID, markSeq)
	if err != nil {
		return nil, fmt.Errorf("mark read in %s: %w", req.ThreadID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("mark read in %s: commit: %w", req.ThreadID, err)
	}
	return &ecbserver.MarkReadResponse{MessageID: markID, Unread: &unread}, nil
}

// AddParticipants makes known users members of a thread, on behalf of a
// member with the admin or owner bit.
func (b *ecbBackend) AddParticipants(ctx context.Context, req *ecbserver.AddParticipantsRequest) (*ecbserver.AddParticipantsResponse, error) {
	var wanted []string
	for _, p := range req.Participants {
		if !slices.Contains(wanted, p) {
			wanted = append(wanted, p)
		}
	}
	if len(wanted) > maxParticipants {
		return nil, ecbserver.InvalidArgument(fmt.Sprintf("at most %d participants can be added at once", maxParticipants))
	}

	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("add participants: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	acc, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, ecbserver.AccessAdmin|ecbserver.AccessOwner,
		"only an admin or the owner of this thread may add participants")
	if err != nil {
		return nil, err
	}

	// Members are skipped. A row with access 0 is a user the backend banned
	// from the thread: a thread admin cannot undo that by adding them back.
	var added []string
	for _, p := range wanted {
		pacc, pmember, err := accessOf(ctx, tx, req.ThreadID, p)
		if err != nil {
			return nil, err
		}
		switch {
		case pmember && pacc != ecbserver.AccessNone:
		case pmember:
			return nil, ecbserver.Forbidden(strconv.Quote(p) + " is banned from this thread")
		default:
			added = append(added, p)
		}
	}
	if err := b.checkParticipants(ctx, tx, req.UserID, added); err != nil {
		return nil, err
	}
	var members int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM thread_members WHERE thread_id = ? AND access != 0`,
		req.ThreadID).Scan(&members); err != nil {
		return nil, fmt.Errorf("add participants to %s: count members: %w", req.ThreadID, err)
	}
	if members+len(added) > maxMembers {
		return nil, ecbserver.Conflict(fmt.Sprintf("a thread has at most %d members", maxMembers))
	}
	// A new member starts with the history read: they are told about what
	// is said from now on, not about everything said before they came.
	for _, p := range added {
		if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id, user_id, access, read_seq)
			VALUES (?1, ?2, ?3, COALESCE((SELECT MAX(seq) FROM messages WHERE thread_id = ?1), 0))`,
			req.ThreadID, p, memberAccess); err != nil {
			return nil, fmt.Errorf("add participant %s to %s: %w", p, req.ThreadID, err)
		}
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("add participants: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("add participants to %s: commit: %w", req.ThreadID, err)
	}
	tok, err := b.threadToken(th, req.UserID, acc)
	if err != nil {
		return nil, err
	}
	if added == nil {
		added = []string{}
	}
	return &ecbserver.AddParticipantsResponse{Thread: *th, ThreadToken: tok, Added: added}, nil
}

// LeaveThread removes the caller from a thread. Their membership row goes,
// with their access code and read mark: coming back takes an
// addParticipants, after which they start afresh.
func (b *ecbBackend) LeaveThread(ctx context.Context, req *ecbserver.LeaveThreadRequest) (*ecbserver.LeaveThreadResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("leave thread: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	// Any access bit: a banned user (access 0) is no member either, and
	// deleting their row would lift the ban.
	const anyAccess = ecbserver.AccessRead | ecbserver.AccessWrite | ecbserver.AccessAdmin | ecbserver.AccessOwner
	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, anyAccess, "you are not a member of this thread"); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM thread_members WHERE thread_id = ? AND user_id = ?`, req.ThreadID, req.UserID); err != nil {
		return nil, fmt.Errorf("leave thread %s: %w", req.ThreadID, err)
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("leave thread: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("leave thread %s: commit: %w", req.ThreadID, err)
	}
	return &ecbserver.LeaveThreadResponse{Thread: *th}, nil
}

// requireThread answers 404 for an unknown thread.
// requireAccess checks that thread threadID exists (else not_found) and
// that userID is a member with at least one of the access bits in anyOf
// (else forbidden with refusal), and returns their access.
func requireAccess(ctx context.Context, q querier, threadID, userID string, anyOf int, refusal string) (acc int, err error) {
	if err := requireThread(ctx, q, threadID); err != nil {
		return 0, err
	}
	acc, member, err := accessOf(ctx, q, threadID, userID)
	if err != nil {
		return 0, err
	}
	if !member || acc&anyOf == 0 {
		return 0, ecbserver.Forbidden(refusal)
	}
	return acc, nil
}

func requireThread(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM threads WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("look up thread %s: %w", id, err)
	}
	if n == 0 {
		return ecbserver.NotFound("no thread " + strconv.Quote(id))
	}
	return nil
}

// countUnread counts the messages after readSeq that someone other than the
// user wrote: an author has read their own messages.
func countUnread(ctx context.Context, q querier, threadID, userID string, readSeq int64) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE thread_id = ? AND seq > ? AND author_id != ? AND visibility = ''`,
		threadID, readSeq, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unread of %s: %w", userID, err)
	}
	return n, nil
}

// advanceReadMark moves the author's read mark to the message they just
// wrote: writing in a thread reads it up to there.
func advanceReadMark(ctx context.Context, q querier, threadID, userID, messageID string) error {
	if _, err := q.ExecContext(ctx, `UPDATE thread_members
		SET read_seq = MAX(read_seq, (SELECT seq FROM messages WHERE id = ?))
		WHERE thread_id = ? AND user_id = ?`, messageID, threadID, userID); err != nil {
		return fmt.Errorf("advance read mark of %s: %w", userID, err)
	}
	return nil
}
