package refbackend

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Limits of what the reference backend stores. ECB checks its own limits
// first; these protect the backend from any caller that got past it.
const (
	defaultPageSize = 50
	maxPageSize     = 200
	maxBodyBytes    = 32 << 10
	maxSubjectRunes = 200
	maxParticipants = 100
	// ownerAccess is what a thread's creator gets: read, write and owner.
	ownerAccess  = ecbserver.AccessRead | ecbserver.AccessWrite | ecbserver.AccessOwner
	memberAccess = ecbserver.AccessRead | ecbserver.AccessWrite
)

// ecbBackend serves the ECB contract from the Server's database.
type ecbBackend struct{ s *Server }

var (
	_ ecbserver.Backend            = (*ecbBackend)(nil)
	_ ecbserver.ReadMarker         = (*ecbBackend)(nil)
	_ ecbserver.ParticipantManager = (*ecbBackend)(nil)
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (b *ecbBackend) Authenticate(ctx context.Context, req *ecbserver.AuthenticateRequest) (*ecbserver.AuthenticateResponse, error) {
	var (
		userID, name string
		expires      int64
	)
	err := b.s.db.QueryRowContext(ctx, `SELECT s.user_id, u.name, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, tokenHash(req.AccessToken)).
		Scan(&userID, &name, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ecbserver.Unauthenticated("access token is unknown or expired")
	case err != nil:
		return nil, fmt.Errorf("authenticate: load session: %w", err)
	}
	if b.s.now().UnixMilli() >= expires {
		return nil, ecbserver.Unauthenticated("access token is unknown or expired")
	}
	roles, workgroups, err := b.rolesOf(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("authenticate %s: %w", userID, err)
	}
	tok, err := b.s.signer.SignUserToken(ecbserver.UserTokenParams{ID: userID, Name: name, Roles: roles, Workgroups: workgroups})
	if err != nil {
		return nil, fmt.Errorf("authenticate %s: %w", userID, err)
	}
	return &ecbserver.AuthenticateResponse{UserToken: tok, User: ecbserver.User{ID: userID, Name: name}}, nil
}

func (b *ecbBackend) rolesOf(ctx context.Context, userID string) (roles, workgroups []string, err error) {
	var r, w string
	err = b.s.db.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(GROUP_CONCAT(role, ','), '') FROM (SELECT role FROM user_roles WHERE user_id = ?1 ORDER BY role)),
		(SELECT COALESCE(GROUP_CONCAT(workgroup, ','), '') FROM (SELECT workgroup FROM workgroup_members WHERE user_id = ?1 ORDER BY workgroup))`,
		userID).Scan(&r, &w)
	if err != nil {
		return nil, nil, fmt.Errorf("load roles: %w", err)
	}
	return splitList(r), splitList(w), nil
}

func (b *ecbBackend) GetContacts(ctx context.Context, req *ecbserver.GetContactsRequest) (*ecbserver.GetContactsResponse, error) {
	if err := b.requireUser(ctx, b.s.db, req.UserID); err != nil {
		return nil, err
	}
	rows, err := b.s.db.QueryContext(ctx, `SELECT u.id, u.name FROM contacts c JOIN users u ON u.id = c.contact_id
		WHERE c.user_id = ? ORDER BY u.name, u.id`, req.UserID)
	if err != nil {
		return nil, fmt.Errorf("get contacts of %s: %w", req.UserID, err)
	}
	defer rows.Close()
	contacts, err := scanUsers(rows)
	if err != nil {
		return nil, fmt.Errorf("get contacts of %s: %w", req.UserID, err)
	}
	if err := withProperties(ctx, b.s.db, contacts); err != nil {
		return nil, err
	}
	return &ecbserver.GetContactsResponse{Contacts: contacts}, nil
}

func (b *ecbBackend) GetThreads(ctx context.Context, req *ecbserver.GetThreadsRequest) (*ecbserver.GetThreadsResponse, error) {
	if err := b.requireUser(ctx, b.s.db, req.UserID); err != nil {
		return nil, err
	}
	// Threads the user cannot read (access without the read bit, a ban) are
	// left out: the user has no use for a token that opens nothing.
	rows, err := b.s.db.QueryContext(ctx, `SELECT t.id, m.access, m.read_seq FROM threads t
		JOIN thread_members m ON m.thread_id = t.id
		WHERE m.user_id = ? AND (m.access & ?) != 0
		ORDER BY t.updated_at DESC, t.rowid DESC`, req.UserID, ecbserver.AccessRead)
	if err != nil {
		return nil, fmt.Errorf("get threads of %s: %w", req.UserID, err)
	}
	type entry struct {
		id      string
		acc     int
		readSeq int64
	}
	var entries []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.id, &e.acc, &e.readSeq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("get threads of %s: %w", req.UserID, err)
		}
		entries = append(entries, e)
	}
	// Closed before the per-thread queries below, which need a connection of
	// their own; holding this one too would double the pool use per call.
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get threads of %s: %w", req.UserID, err)
	}

	out := &ecbserver.GetThreadsResponse{Threads: make([]ecbserver.SignedThread, 0, len(entries))}
	for _, e := range entries {
		th, err := b.loadThread(ctx, b.s.db, e.id)
		if err != nil {
			return nil, fmt.Errorf("get threads of %s: %w", req.UserID, err)
		}
		// The unread count is the caller's own: set here, where the thread is
		// answered to the caller alone, never in loadThread.
		unread, err := countUnread(ctx, b.s.db, e.id, req.UserID, e.readSeq)
		if err != nil {
			return nil, fmt.Errorf("get threads of %s: %w", req.UserID, err)
		}
		th.Unread = &unread
		mentioned, err := mentionedAfter(ctx, b.s.db, e.id, req.UserID, e.readSeq)
		if err != nil {
			return nil, fmt.Errorf("get threads of %s: %w", req.UserID, err)
		}
		th.Mentioned = &mentioned
		tok, err := b.threadToken(th, req.UserID, e.acc)
		if err != nil {
			return nil, err
		}
		out.Threads = append(out.Threads, ecbserver.SignedThread{Thread: *th, ThreadToken: tok})
	}
	return out, nil
}

func (b *ecbBackend) CreateThread(ctx context.Context, req *ecbserver.CreateThreadRequest) (*ecbserver.CreateThreadResponse, error) {
	if err := checkBody(req.Message.Body); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(req.Subject) > maxSubjectRunes {
		return nil, ecbserver.InvalidArgument(fmt.Sprintf("subject is longer than %d characters", maxSubjectRunes))
	}
	if err := checkData(req.Message.Data); err != nil {
		return nil, err
	}
	// The creator is a member anyway; naming them again is harmless.
	var participants []string
	for _, p := range req.Participants {
		if p != req.UserID && !slices.Contains(participants, p) {
			participants = append(participants, p)
		}
	}
	if len(participants) == 0 && !req.Public {
		return nil, ecbserver.InvalidArgument("participants must name at least one user besides the creator")
	}
	if len(participants) > maxParticipants {
		return nil, ecbserver.InvalidArgument(fmt.Sprintf("a thread has at most %d participants", maxParticipants))
	}
	key := req.Message.ClientMessageID
	if key == "" {
		key = ecbserver.IdempotencyKey(ctx)
	}

	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create thread: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if err := b.requireUser(ctx, tx, req.UserID); err != nil {
		return nil, err
	}
	if key != "" {
		resp, err := b.replayCreate(ctx, tx, req, key)
		if resp != nil || err != nil {
			return resp, err
		}
	}
	if err := b.checkParticipants(ctx, tx, req.UserID, participants); err != nil {
		return nil, err
	}

	now := b.s.now().UnixMilli()
	threadID := randomID("t")
	var createKey any
	if key != "" {
		createKey = key
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO threads(id, subject, created_by, create_key, created_at, updated_at, public)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, threadID, req.Subject, req.UserID, createKey, now, now, req.Public); err != nil {
		return nil, fmt.Errorf("create thread: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id, user_id, access) VALUES (?, ?, ?)`,
		threadID, req.UserID, ownerAccess); err != nil {
		return nil, fmt.Errorf("create thread: add creator: %w", err)
	}
	for _, p := range participants {
		if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id, user_id, access) VALUES (?, ?, ?)`,
			threadID, p, memberAccess); err != nil {
			return nil, fmt.Errorf("create thread: add %s: %w", p, err)
		}
	}
	msg, err := insertMessage(ctx, tx, threadID, req.UserID, req.Message.Body, req.Message.Data, key, now)
	if err != nil {
		return nil, fmt.Errorf("create thread: %w", err)
	}
	if err := advanceReadMark(ctx, tx, threadID, req.UserID, msg.ID); err != nil {
		return nil, fmt.Errorf("create thread: %w", err)
	}
	th, err := b.loadThread(ctx, tx, threadID)
	if err != nil {
		return nil, fmt.Errorf("create thread: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create thread: commit: %w", err)
	}
	tok, err := b.threadToken(th, req.UserID, ownerAccess)
	if err != nil {
		return nil, err
	}
	return &ecbserver.CreateThreadResponse{Thread: *th, ThreadToken: tok, Message: *msg}, nil
}

// replayCreate returns the thread a previous createThread with the same key
// created, nil when there is none, or a conflict when the key was used for a
// different first message.
func (b *ecbBackend) replayCreate(ctx context.Context, tx *sql.Tx, req *ecbserver.CreateThreadRequest, key string) (*ecbserver.CreateThreadResponse, error) {
	var threadID string
	err := tx.QueryRowContext(ctx, `SELECT id FROM threads WHERE created_by = ? AND create_key = ?`, req.UserID, key).Scan(&threadID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create thread: look up key: %w", err)
	}
	first, err := scanMessage(tx.QueryRowContext(ctx, messageColumns+` WHERE thread_id = ? ORDER BY seq LIMIT 1`, threadID))
	if err != nil {
		return nil, fmt.Errorf("create thread: load first message of %s: %w", threadID, err)
	}
	if first.Body != req.Message.Body {
		return nil, ecbserver.Conflict("clientMessageId was already used for a different thread")
	}
	th, err := b.loadThread(ctx, tx, threadID)
	if err != nil {
		return nil, fmt.Errorf("create thread: %w", err)
	}
	acc, _, err := accessOf(ctx, tx, threadID, req.UserID)
	if err != nil {
		return nil, err
	}
	tok, err := b.threadToken(th, req.UserID, acc)
	if err != nil {
		return nil, err
	}
	return &ecbserver.CreateThreadResponse{Thread: *th, ThreadToken: tok, Message: *first}, nil
}

// checkParticipants: each must exist (else 400) and, unless the creator is
// staff, be one of the creator's contacts (else 403). createThread and
// addParticipants apply it to the users they make members.
func (b *ecbBackend) checkParticipants(ctx context.Context, q querier, creator string, participants []string) error {
	// Staff (agents, supervisors) may start threads with any known user, not
	// only their contacts: an agent answers customers who are nobody's contact.
	staff, err := seesWhispers(ctx, q, creator)
	if err != nil {
		return fmt.Errorf("check participants: %w", err)
	}
	for _, p := range participants {
		var known, contact int
		if err := q.QueryRowContext(ctx, `SELECT
			EXISTS(SELECT 1 FROM users WHERE id = ?1),
			EXISTS(SELECT 1 FROM contacts WHERE user_id = ?2 AND contact_id = ?1)`, p, creator).Scan(&known, &contact); err != nil {
			return fmt.Errorf("check participant %s: %w", p, err)
		}
		if known == 0 {
			return ecbserver.InvalidArgument("unknown participant " + strconv.Quote(p))
		}
		if contact == 0 && !staff {
			return ecbserver.Forbidden(strconv.Quote(p) + " is not one of your contacts")
		}
	}
	return nil
}

func (b *ecbBackend) GetThread(ctx context.Context, req *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error) {
	limit := req.Limit
	switch {
	case limit == 0:
		limit = defaultPageSize
	case limit > maxPageSize:
		limit = maxPageSize
	}
	before := int64(math.MaxInt64)
	if req.Before != "" {
		seq, err := decodeCursor(req.Before)
		if err != nil {
			return nil, ecbserver.InvalidArgument("before is not a cursor this backend issued")
		}
		before = seq
	}
	th, err := b.loadThread(ctx, b.s.db, req.ThreadID)
	if err != nil {
		return nil, err
	}
	acc, member, err := accessOf(ctx, b.s.db, req.ThreadID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !member || acc&ecbserver.AccessRead == 0 {
		return nil, ecbserver.Forbidden("you may not read this thread")
	}
	// Mentioned is the caller's own, like Unread in getThreads.
	var readSeq int64
	if err := b.s.db.QueryRowContext(ctx, `SELECT read_seq FROM thread_members WHERE thread_id = ? AND user_id = ?`,
		req.ThreadID, req.UserID).Scan(&readSeq); err != nil {
		return nil, fmt.Errorf("get thread %s: read mark: %w", req.ThreadID, err)
	}
	mentioned, err := mentionedAfter(ctx, b.s.db, req.ThreadID, req.UserID, readSeq)
	if err != nil {
		return nil, fmt.Errorf("get thread %s: %w", req.ThreadID, err)
	}
	th.Mentioned = &mentioned

	// Whispers only for agents and supervisors.
	agents, err := seesWhispers(ctx, b.s.db, req.UserID)
	if err != nil {
		return nil, err
	}
	// One row more than the page tells whether an older page exists.
	rows, err := b.s.db.QueryContext(ctx, messageColumns+` WHERE thread_id = ? AND seq < ? AND (visibility = '' OR ?) ORDER BY seq DESC LIMIT ?`,
		req.ThreadID, before, agents, limit+1)
	if err != nil {
		return nil, fmt.Errorf("get thread %s: messages: %w", req.ThreadID, err)
	}
	defer rows.Close()
	msgs := make([]ecbserver.Message, 0, limit)
	var oldest int64
	more := false
	for rows.Next() {
		if len(msgs) == limit {
			more = true
			break
		}
		m, seq, err := scanMessageSeq(rows)
		if err != nil {
			return nil, fmt.Errorf("get thread %s: %w", req.ThreadID, err)
		}
		msgs = append(msgs, *m)
		oldest = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get thread %s: messages: %w", req.ThreadID, err)
	}
	rows.Close()
	slices.Reverse(msgs) // the query walks backwards; a page reads forwards
	if err := decorate(ctx, b.s.db, req.UserID, msgs); err != nil {
		return nil, fmt.Errorf("get messages of %s: %w", req.ThreadID, err)
	}
	if err := b.s.withAttachments(ctx, b.s.db, msgs); err != nil {
		return nil, fmt.Errorf("get thread %s: %w", req.ThreadID, err)
	}

	tok, err := b.threadToken(th, req.UserID, acc)
	if err != nil {
		return nil, err
	}
	out := &ecbserver.GetThreadResponse{Thread: *th, ThreadToken: tok, Messages: msgs}
	if more {
		out.NextCursor = encodeCursor(oldest)
	}
	return out, nil
}

func (b *ecbBackend) AddThreadMessage(ctx context.Context, req *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	if len(req.Attachments) == 0 || req.Body != "" { // a message of files only may have no body
		if err := checkBody(req.Body); err != nil {
			return nil, err
		}
	}
	if err := checkData(req.Data); err != nil {
		return nil, err
	}
	switch req.Visibility {
	case "":
	case ecbserver.VisibilityAgents:
		agents, err := seesWhispers(ctx, b.s.db, req.UserID)
		if err != nil {
			return nil, err
		}
		if !agents {
			return nil, ecbserver.Forbidden("only agents and supervisors may whisper")
		}
	default:
		return nil, ecbserver.InvalidArgument("visibility must be absent or \"agents\"")
	}
	key := req.ClientMessageID
	if key == "" {
		key = ecbserver.IdempotencyKey(ctx)
	}

	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("add message: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM threads WHERE id = ?`, req.ThreadID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("add message to %s: %w", req.ThreadID, err)
	}
	if exists == 0 {
		return nil, ecbserver.NotFound("no thread " + strconv.Quote(req.ThreadID))
	}
	acc, member, err := accessOf(ctx, tx, req.ThreadID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !member || acc&ecbserver.AccessWrite == 0 {
		return nil, ecbserver.Forbidden("you may not write in this thread")
	}

	if req.ReplyTo != "" {
		if err := checkReplyTo(ctx, tx, req.ThreadID, req.ReplyTo, req.Visibility); err != nil {
			return nil, err
		}
	}

	var msg *ecbserver.Message
	if key != "" {
		prev, err := scanMessage(tx.QueryRowContext(ctx, messageColumns+
			` WHERE thread_id = ? AND author_id = ? AND client_message_id = ?`, req.ThreadID, req.UserID, key))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("add message to %s: look up clientMessageId: %w", req.ThreadID, err)
		case prev.Body != req.Body:
			return nil, ecbserver.Conflict("clientMessageId was already used for a different message")
		default:
			msg = prev // a retry: answer with what was stored, store nothing
		}
	}
	if msg == nil {
		now := b.s.now().UnixMilli()
		msg, err = insertMessage(ctx, tx, req.ThreadID, req.UserID, req.Body, req.Data, key, now)
		if err != nil {
			return nil, fmt.Errorf("add message to %s: %w", req.ThreadID, err)
		}
		if req.Visibility != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET visibility = ? WHERE id = ?`, req.Visibility, msg.ID); err != nil {
				return nil, fmt.Errorf("add message to %s: visibility: %w", req.ThreadID, err)
			}
			msg.Visibility = req.Visibility
		}
		if err := attachTo(ctx, tx, req.ThreadID, req.UserID, msg.ID, req.Attachments); err != nil {
			return nil, err
		}
		if req.ReplyTo != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET reply_to = ? WHERE id = ?`, req.ReplyTo, msg.ID); err != nil {
				return nil, fmt.Errorf("add message to %s: replyTo: %w", req.ThreadID, err)
			}
			msg.ReplyTo = &ecbserver.ReplyQuote{MessageID: req.ReplyTo}
		}
		if _, err := b.keepMentions(ctx, tx, msg, req.Mentions); err != nil {
			return nil, fmt.Errorf("add message to %s: %w", req.ThreadID, err)
		}
		if err := advanceReadMark(ctx, tx, req.ThreadID, req.UserID, msg.ID); err != nil {
			return nil, fmt.Errorf("add message to %s: %w", req.ThreadID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE threads SET updated_at = ? WHERE id = ?`, now, req.ThreadID); err != nil {
			return nil, fmt.Errorf("add message to %s: touch thread: %w", req.ThreadID, err)
		}
	}
	th, err := b.loadThread(ctx, tx, req.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("add message: %w", err)
	}
	decorated := []ecbserver.Message{*msg}
	if err := decorate(ctx, tx, req.UserID, decorated); err != nil {
		return nil, fmt.Errorf("add message: %w", err)
	}
	if err := b.s.withAttachments(ctx, tx, decorated); err != nil {
		return nil, fmt.Errorf("add message to %s: %w", req.ThreadID, err)
	}
	msg = &decorated[0]
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("add message to %s: commit: %w", req.ThreadID, err)
	}
	// A fresh threadToken only when the author's nears its exp or grants
	// other access than the user has now (contract 1.5): signing is most of
	// what a message costs here.
	tok, err := b.s.signer.ReissueThreadToken(req, ecbserver.ThreadTokenParams{ThreadID: th.ID, UserID: req.UserID, Access: acc, Members: th.Members})
	if err != nil {
		return nil, fmt.Errorf("thread token for %s in %s: %w", req.UserID, th.ID, err)
	}
	return &ecbserver.AddThreadMessageResponse{Message: *msg, ThreadToken: tok}, nil
}

// requireUser answers 404 for a user the backend does not know. ECB only
// forwards users whose userToken this backend signed, so this means the user
// was deleted since.
func (b *ecbBackend) requireUser(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("look up user %s: %w", id, err)
	}
	if n == 0 {
		return ecbserver.NotFound("no user " + strconv.Quote(id))
	}
	return nil
}

// loadThread reads a thread with its members and last message.
func (b *ecbBackend) loadThread(ctx context.Context, q querier, id string) (*ecbserver.Thread, error) {
	var (
		th               = ecbserver.Thread{ID: id, Members: []string{}}
		created, updated int64
	)
	var data sql.NullString
	err := q.QueryRowContext(ctx, `SELECT subject, created_at, updated_at, public, data FROM threads WHERE id = ?`, id).
		Scan(&th.Subject, &created, &updated, &th.Public, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ecbserver.NotFound("no thread " + strconv.Quote(id))
	}
	if err != nil {
		return nil, fmt.Errorf("load thread %s: %w", id, err)
	}
	th.CreatedAt, th.UpdatedAt = fromMillis(created), fromMillis(updated)
	th.Data = threadData(data)

	// Members with access 0 were removed or banned: no longer members.
	// rowid order puts the creator first.
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM thread_members WHERE thread_id = ? AND access != 0 ORDER BY rowid`, id)
	if err != nil {
		return nil, fmt.Errorf("load members of %s: %w", id, err)
	}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load members of %s: %w", id, err)
		}
		th.Members = append(th.Members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load members of %s: %w", id, err)
	}

	// A whisper is never anyone's lastMessage: the thread is answered to
	// visitors too.
	last, err := scanMessage(q.QueryRowContext(ctx, messageColumns+` WHERE thread_id = ? AND visibility = '' ORDER BY seq DESC LIMIT 1`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("load last message of %s: %w", id, err)
	default:
		th.LastMessage = last
	}
	return &th, nil
}

// accessOf returns the user's access code in the thread and whether the user
// is a member at all.
func accessOf(ctx context.Context, q querier, threadID, userID string) (acc int, member bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT access FROM thread_members WHERE thread_id = ? AND user_id = ?`, threadID, userID).Scan(&acc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("access of %s in %s: %w", userID, threadID, err)
	}
	return acc, true, nil
}

func (b *ecbBackend) threadToken(th *ecbserver.Thread, userID string, acc int) (string, error) {
	tok, err := b.s.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: th.ID, UserID: userID, Access: acc, Members: th.Members})
	if err != nil {
		return "", fmt.Errorf("thread token for %s in %s: %w", userID, th.ID, err)
	}
	return tok, nil
}

const messageColumns = `SELECT seq, id, thread_id, author_id, body, data, client_message_id, created_at, visibility, deleted, edited_at, reply_to FROM messages`

type rowScanner interface{ Scan(dest ...any) error }

func scanMessage(r rowScanner) (*ecbserver.Message, error) {
	m, _, err := scanMessageSeq(r)
	return m, err
}

func scanMessageSeq(r rowScanner) (*ecbserver.Message, int64, error) {
	var (
		m         ecbserver.Message
		seq       int64
		data, cid sql.NullString
		created   int64
		edited    sql.NullInt64
		replyTo   sql.NullString
	)
	if err := r.Scan(&seq, &m.ID, &m.ThreadID, &m.AuthorID, &m.Body, &data, &cid, &created, &m.Visibility, &m.Deleted, &edited, &replyTo); err != nil {
		return nil, 0, err
	}
	if edited.Valid {
		at := fromMillis(edited.Int64)
		m.EditedAt = &at
	}
	if replyTo.Valid {
		m.ReplyTo = &ecbserver.ReplyQuote{MessageID: replyTo.String} // decorate fills in the quote
	}
	if data.Valid {
		m.Data = json.RawMessage(data.String)
	}
	m.ClientMessageID = cid.String
	m.CreatedAt = fromMillis(created)
	return &m, seq, nil
}

func insertMessage(ctx context.Context, tx *sql.Tx, threadID, authorID, body string, data json.RawMessage, key string, now int64) (*ecbserver.Message, error) {
	m := &ecbserver.Message{
		ID: randomID("m"), ThreadID: threadID, AuthorID: authorID, Body: body,
		Data: data, ClientMessageID: key, CreatedAt: fromMillis(now),
	}
	var dataCol, keyCol any
	if len(data) > 0 {
		dataCol = string(data)
	}
	if key != "" {
		keyCol = key
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages(id, thread_id, author_id, body, data, client_message_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, m.ID, threadID, authorID, body, dataCol, keyCol, now); err != nil {
		return nil, fmt.Errorf("insert message: %w", err)
	}
	return m, nil
}

func checkBody(body string) error {
	if strings.TrimSpace(body) == "" {
		return ecbserver.InvalidArgument("the message body is empty")
	}
	if len(body) > maxBodyBytes {
		return ecbserver.InvalidArgument(fmt.Sprintf("the message body exceeds %d bytes", maxBodyBytes))
	}
	if !utf8.ValidString(body) {
		return ecbserver.InvalidArgument("the message body is not valid UTF-8")
	}
	return nil
}

func checkData(data json.RawMessage) error {
	if len(data) > maxBodyBytes {
		return ecbserver.InvalidArgument(fmt.Sprintf("data exceeds %d bytes", maxBodyBytes))
	}
	return nil
}

// The cursor is opaque to ECB and the client: a version tag and the message
// sequence number, base64url-encoded, so its form can change without a
// contract change.
const cursorPrefix = "c1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, fmt.Errorf("decode cursor: %w", err)
	}
	s, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, errors.New("decode cursor: unknown version")
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil || seq <= 0 {
		return 0, errors.New("decode cursor: bad sequence")
	}
	return seq, nil
}

// randomID is prefix_ and 16 hex digits: unguessable enough that knowing one
// thread id tells nothing about another, and the UNIQUE constraints catch the
// impossible collision.
func randomID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead) since Go 1.24
	return prefix + "_" + hex.EncodeToString(b)
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
