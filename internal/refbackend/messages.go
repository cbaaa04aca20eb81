package refbackend

// The calls of contract 1.5 on messages: edits (ecbserver.MessageEditor,
// the author only: an admin may delete another's message but never put
// words in their mouth), reactions (ecbserver.Reactor, one row per user
// and reaction), replies (AddThreadMessageRequest.ReplyTo, a parent of the
// same thread) and search (ecbserver.MessageSearcher, SQLite FTS5 over the
// bodies, kept by triggers).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

var (
	_ ecbserver.MessageEditor   = (*ecbBackend)(nil)
	_ ecbserver.Reactor         = (*ecbBackend)(nil)
	_ ecbserver.MessageSearcher = (*ecbBackend)(nil)
)

// excerptRunes is how much of a parent's body a reply quotes.
const excerptRunes = 140

// maxReactionBytes bounds a reaction the backend stores (ECB's own limit is
// configurable and usually lower).
const maxReactionBytes = 64

// schemaV10 adds edits, replies, reactions and the full-text index of the
// message bodies: an external-content FTS5 table over messages(body),
// kept in step by triggers (a deleted message's body is ” and drops out).
var schemaV10 = execAll(
	`ALTER TABLE messages ADD COLUMN edited_at INTEGER`,
	`ALTER TABLE messages ADD COLUMN reply_to TEXT`,
	`CREATE TABLE reactions (
		message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
		user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		reaction   TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (message_id, reaction, user_id)
	)`,
	`CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='seq')`,
	`CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
		INSERT INTO messages_fts(rowid, body) VALUES (new.seq, new.body);
	END`,
	`CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
		INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
	END`,
	`CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
		INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
		INSERT INTO messages_fts(rowid, body) VALUES (new.seq, new.body);
	END`,
	`INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')`,
)

// decorate fills in what a stored message row does not hold: the quote of
// its parent, its reactions counted (Me for viewer) and its mentions.
func decorate(ctx context.Context, q querier, viewer string, msgs []ecbserver.Message) error {
	for i := range msgs {
		m := &msgs[i]
		if m.ReplyTo != nil {
			var (
				author, body string
				deleted      bool
			)
			err := q.QueryRowContext(ctx, `SELECT author_id, body, deleted FROM messages WHERE id = ?`, m.ReplyTo.MessageID).Scan(&author, &body, &deleted)
			switch {
			case errors.Is(err, sql.ErrNoRows): // the parent went with its thread: keep the id
				m.ReplyTo.Deleted = true
			case err != nil:
				return fmt.Errorf("quote of %s: %w", m.ID, err)
			default:
				m.ReplyTo.AuthorID, m.ReplyTo.Excerpt, m.ReplyTo.Deleted = author, excerpt(body), deleted
			}
		}
		rs, err := reactionsOf(ctx, q, m.ID, viewer)
		if err != nil {
			return err
		}
		m.Reactions = rs
		if !m.Deleted { // a deleted message keeps nothing of what it said
			if m.Mentions, err = mentionsOf(ctx, q, m.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func excerpt(body string) string {
	if utf8.RuneCountInString(body) <= excerptRunes {
		return body
	}
	r := []rune(body)
	return string(r[:excerptRunes]) + "…"
}

func reactionsOf(ctx context.Context, q querier, messageID, viewer string) ([]ecbserver.ReactionCount, error) {
	rows, err := q.QueryContext(ctx, `SELECT reaction, COUNT(*), MAX(user_id = ?) FROM reactions WHERE message_id = ?
		GROUP BY reaction ORDER BY MIN(created_at), reaction`, viewer, messageID)
	if err != nil {
		return nil, fmt.Errorf("reactions of %s: %w", messageID, err)
	}
	defer rows.Close()
	var out []ecbserver.ReactionCount
	for rows.Next() {
		var rc ecbserver.ReactionCount
		if err := rows.Scan(&rc.Reaction, &rc.Count, &rc.Me); err != nil {
			return nil, fmt.Errorf("reactions of %s: %w", messageID, err)
		}
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reactions of %s: %w", messageID, err)
	}
	return out, nil
}

// checkReplyTo refuses a parent that is not a message of the thread, or a
// whisper quoted by a message everyone reads.
func checkReplyTo(ctx context.Context, q querier, threadID, parentID, visibility string) error {
	var (
		thread, vis string
	)
	err := q.QueryRowContext(ctx, `SELECT thread_id, visibility FROM messages WHERE id = ?`, parentID).Scan(&thread, &vis)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && thread != threadID) {
		return ecbserver.InvalidArgument("replyTo must be a message of this thread")
	}
	if err != nil {
		return fmt.Errorf("look up replyTo %s: %w", parentID, err)
	}
	if vis != "" && visibility == "" {
		return ecbserver.InvalidArgument("a message everyone reads cannot reply to a whisper")
	}
	return nil
}

// messageIn reads a message of the thread that userID may see: 404 for
// another thread's message and for a whisper the user may not read.
func (b *ecbBackend) messageIn(ctx context.Context, q querier, threadID, messageID, userID string) (*ecbserver.Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, messageColumns+` WHERE id = ? AND thread_id = ?`, messageID, threadID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ecbserver.NotFound("no message " + strconv.Quote(messageID) + " in this thread")
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", messageID, err)
	}
	if m.Visibility != "" {
		agents, err := seesWhispers(ctx, b.s.db, userID)
		if err != nil {
			return nil, err
		}
		if !agents {
			return nil, ecbserver.NotFound("no message " + strconv.Quote(messageID) + " in this thread")
		}
	}
	return m, nil
}

// EditMessage replaces the body (and the data, when given) of the caller's
// own message.
func (b *ecbBackend) EditMessage(ctx context.Context, req *ecbserver.EditMessageRequest) (*ecbserver.EditMessageResponse, error) {
	if err := checkBody(req.Body); err != nil {
		return nil, err
	}
	if err := checkData(req.Data); err != nil {
		return nil, err
	}
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("edit message: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, ecbserver.AccessWrite, "you may not write in this thread"); err != nil {
		return nil, err
	}
	m, err := b.messageIn(ctx, tx, req.ThreadID, req.MessageID, req.UserID)
	if err != nil {
		return nil, err
	}
	if m.AuthorID != req.UserID {
		return nil, ecbserver.Forbidden("only its author may edit a message")
	}
	if m.Deleted {
		return nil, ecbserver.InvalidArgument("a deleted message cannot be edited")
	}
	now := b.s.now().UnixMilli()
	if len(req.Data) > 0 {
		var data any
		if string(req.Data) != "null" {
			data = string(req.Data)
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET body = ?, data = ?, edited_at = ? WHERE id = ?`, req.Body, data, now, req.MessageID)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE messages SET body = ?, edited_at = ? WHERE id = ?`, req.Body, now, req.MessageID)
	}
	if err != nil {
		return nil, fmt.Errorf("edit message %s: %w", req.MessageID, err)
	}
	out, err := b.messageIn(ctx, tx, req.ThreadID, req.MessageID, req.UserID)
	if err != nil {
		return nil, err
	}
	msgs := []ecbserver.Message{*out}
	if err := decorate(ctx, tx, req.UserID, msgs); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("edit message %s: commit: %w", req.MessageID, err)
	}
	return &ecbserver.EditMessageResponse{Message: msgs[0]}, nil
}

// React adds the caller's reaction; a second time changes nothing.
func (b *ecbBackend) React(ctx context.Context, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error) {
	return b.reaction(ctx, req, `INSERT INTO reactions(message_id, user_id, reaction, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
}

// Unreact removes the caller's reaction, when there is one.
func (b *ecbBackend) Unreact(ctx context.Context, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error) {
	return b.reaction(ctx, req, `DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND reaction = ?3 AND ?4 IS NOT NULL`)
}

func checkReaction(r string) error {
	if r == "" || len(r) > maxReactionBytes || !utf8.ValidString(r) {
		return ecbserver.InvalidArgument(fmt.Sprintf("a reaction is 1 to %d bytes of UTF-8", maxReactionBytes))
	}
	for _, c := range r {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return ecbserver.InvalidArgument("a reaction has no spaces or control characters")
		}
	}
	return nil
}

func (b *ecbBackend) reaction(ctx context.Context, req *ecbserver.ReactionRequest, stmt string) (*ecbserver.ReactionResponse, error) {
	if err := checkReaction(req.Reaction); err != nil {
		return nil, err
	}
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reaction: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := requireAccess(ctx, tx, req.ThreadID, req.UserID, ecbserver.AccessWrite, "you may not write in this thread"); err != nil {
		return nil, err
	}
	m, err := b.messageIn(ctx, tx, req.ThreadID, req.MessageID, req.UserID)
	if err != nil {
		return nil, err
	}
	if m.Deleted {
		return nil, ecbserver.InvalidArgument("a deleted message takes no reactions")
	}
	res, err := tx.ExecContext(ctx, stmt, req.MessageID, req.UserID, req.Reaction, b.s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("reaction on %s: %w", req.MessageID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("reaction on %s: %w", req.MessageID, err)
	}
	msgs := []ecbserver.Message{*m}
	if err := decorate(ctx, tx, req.UserID, msgs); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("reaction on %s: commit: %w", req.MessageID, err)
	}
	return &ecbserver.ReactionResponse{Message: msgs[0], Changed: n > 0}, nil
}

// ftsQuery makes a user's words an FTS5 query that cannot be a syntax
// error: each word a quoted string, the last one a prefix, all required.
func ftsQuery(q string) string {
	words := strings.Fields(q)
	for i, w := range words {
		words[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	if len(words) > 0 {
		words[len(words)-1] += "*"
	}
	return strings.Join(words, " ")
}

// SearchMessages finds messages by their words in the threads the caller
// may read, newest first.
func (b *ecbBackend) SearchMessages(ctx context.Context, req *ecbserver.SearchMessagesRequest) (*ecbserver.SearchMessagesResponse, error) {
	match := ftsQuery(req.Query)
	if match == "" {
		return nil, ecbserver.InvalidArgument("query has no words")
	}
	limit := req.Limit
	switch {
	case limit <= 0:
		limit = defaultPageSize
	case limit > maxPageSize:
		limit = maxPageSize
	}
	before := int64(math.MaxInt64)
	if req.Cursor != "" {
		seq, err := decodeCursor(req.Cursor)
		if err != nil {
			return nil, ecbserver.InvalidArgument("cursor is not one this backend issued")
		}
		before = seq
	}
	agents, err := seesWhispers(ctx, b.s.db, req.UserID)
	if err != nil {
		return nil, err
	}
	cols := strings.Replace(messageColumns, "SELECT seq, id, thread_id, author_id, body, data, client_message_id, created_at, visibility, deleted, edited_at, reply_to FROM messages",
		`SELECT m.seq, m.id, m.thread_id, m.author_id, m.body, m.data, m.client_message_id, m.created_at, m.visibility, m.deleted, m.edited_at, m.reply_to
		FROM messages_fts f JOIN messages m ON m.seq = f.rowid
		JOIN thread_members tm ON tm.thread_id = m.thread_id AND tm.user_id = ? AND (tm.access & ?) != 0`, 1)
	rows, err := b.s.db.QueryContext(ctx, cols+` WHERE messages_fts MATCH ? AND m.deleted = 0 AND (m.visibility = '' OR ?)
		AND (? = '' OR m.thread_id = ?) AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`,
		req.UserID, ecbserver.AccessRead, match, agents, req.ThreadID, req.ThreadID, before, limit+1)
	if err != nil {
		return nil, fmt.Errorf("search messages: %w", err)
	}
	var (
		msgs []ecbserver.Message
		last int64
		more bool
	)
	for rows.Next() {
		if len(msgs) == limit {
			more = true
			break
		}
		m, seq, err := scanMessageSeq(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("search messages: %w", err)
		}
		msgs = append(msgs, *m)
		last = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search messages: %w", err)
	}
	if err := decorate(ctx, b.s.db, req.UserID, msgs); err != nil {
		return nil, err
	}
	out := &ecbserver.SearchMessagesResponse{Hits: make([]ecbserver.SearchHit, 0, len(msgs))}
	tokens := map[string]string{}
	for _, m := range msgs {
		tok, ok := tokens[m.ThreadID]
		if !ok {
			th, err := b.loadThread(ctx, b.s.db, m.ThreadID)
			if err != nil {
				return nil, err
			}
			acc, _, err := accessOf(ctx, b.s.db, m.ThreadID, req.UserID)
			if err != nil {
				return nil, err
			}
			if tok, err = b.threadToken(th, req.UserID, acc); err != nil {
				return nil, err
			}
			tokens[m.ThreadID] = tok
		}
		out.Hits = append(out.Hits, ecbserver.SearchHit{Message: m, ThreadToken: tok})
	}
	if more {
		out.NextCursor = encodeCursor(last)
	}
	return out, nil
}
