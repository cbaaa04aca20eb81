package refbackend

// Mentions (contract 1.6): addThreadMessage keeps the mentions of members
// who may read the message (the others are dropped, never refused), the
// message answers them, and a thread tells its reader whether a message
// after their read mark mentions them.

import (
	"context"
	"fmt"
	"slices"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// schemaV11 adds mentions: one row per mentioned user of a message, in the
// author's order (pos). The index serves Thread.Mentioned: a user's
// mentions in a thread after a seq.
var schemaV11 = execAll(
	`CREATE TABLE mentions (
		message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
		user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		thread_id  TEXT NOT NULL,
		seq        INTEGER NOT NULL,
		pos        INTEGER NOT NULL,
		PRIMARY KEY (message_id, user_id)
	)`,
	`CREATE INDEX mentions_user_thread ON mentions(user_id, thread_id, seq)`,
)

// keepMentions stores the mentions of msg that name a member of the thread
// who may read it (the read bit; in a whisper also role agent or
// supervisor), other than the author, each once, and returns them in the
// author's order. The others are dropped.
func (b *ecbBackend) keepMentions(ctx context.Context, q querier, msg *ecbserver.Message, ids []string) ([]string, error) {
	var kept []string
	for _, id := range ids {
		if id == msg.AuthorID || slices.Contains(kept, id) {
			continue
		}
		acc, member, err := accessOf(ctx, q, msg.ThreadID, id)
		if err != nil {
			return nil, err
		}
		if !member || acc&ecbserver.AccessRead == 0 {
			continue
		}
		if msg.Visibility != "" {
			agents, err := seesWhispers(ctx, q, id)
			if err != nil {
				return nil, err
			}
			if !agents {
				continue
			}
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO mentions(message_id, user_id, thread_id, seq, pos)
			VALUES (?, ?, ?, (SELECT seq FROM messages WHERE id = ?), ?)`, msg.ID, id, msg.ThreadID, msg.ID, len(kept)); err != nil {
			return nil, fmt.Errorf("mention %s in %s: %w", id, msg.ID, err)
		}
		kept = append(kept, id)
	}
	return kept, nil
}

// mentionsOf returns the users a message mentions, in the author's order.
func mentionsOf(ctx context.Context, q querier, messageID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM mentions WHERE message_id = ? ORDER BY pos`, messageID)
	if err != nil {
		return nil, fmt.Errorf("mentions of %s: %w", messageID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("mentions of %s: %w", messageID, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mentions of %s: %w", messageID, err)
	}
	return out, nil
}

// mentionedAfter reports whether a message of the thread after readSeq,
// not deleted, mentions the user.
func mentionedAfter(ctx context.Context, q querier, threadID, userID string, readSeq int64) (bool, error) {
	var yes bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM mentions mn JOIN messages m ON m.id = mn.message_id
		WHERE mn.user_id = ? AND mn.thread_id = ? AND mn.seq > ? AND m.deleted = 0)`,
		userID, threadID, readSeq).Scan(&yes); err != nil {
		return false, fmt.Errorf("mentions of %s in %s: %w", userID, threadID, err)
	}
	return yes, nil
}
