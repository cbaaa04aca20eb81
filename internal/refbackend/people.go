package refbackend

// The people calls of contract 1.4: user search (ecbserver.UserSearcher),
// contacts users add and remove (ecbserver.ContactManager) and profile
// properties (ecbserver.ProfileEditor).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// schemaV7 adds profile properties: name/value strings per user.
var schemaV7 = execAll(
	`CREATE TABLE user_properties (
		user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		name    TEXT NOT NULL,
		value   TEXT NOT NULL,
		PRIMARY KEY (user_id, name)
	)`,
)

// maxSearchResults caps a searchUsers answer (the contract's 1000 at most).
const maxSearchResults = 200

var (
	_ ecbserver.UserSearcher   = (*ecbBackend)(nil)
	_ ecbserver.ContactManager = (*ecbBackend)(nil)
	_ ecbserver.ProfileEditor  = (*ecbBackend)(nil)
)

// SearchUsers finds the registered users (never anonymous visitors) whose id
// or name contains the query, case-insensitively: those whose id or name
// starts with it first, then by name.
func (b *ecbBackend) SearchUsers(ctx context.Context, req *ecbserver.SearchUsersRequest) (*ecbserver.SearchUsersResponse, error) {
	if err := b.requireRegistered(ctx, b.s.db, req.UserID); err != nil {
		return nil, err
	}
	q := strings.ToLower(strings.TrimSpace(req.Query))
	like := "%" + escapeLike(q) + "%"
	prefix := escapeLike(q) + "%"
	rows, err := b.s.db.QueryContext(ctx, `SELECT id, name FROM users
		WHERE visitor = 0 AND id != ? AND (lower(id) LIKE ? ESCAPE '\' OR lower(name) LIKE ? ESCAPE '\')
		ORDER BY (lower(id) LIKE ? ESCAPE '\' OR lower(name) LIKE ? ESCAPE '\') DESC, name, id LIMIT ?`,
		req.UserID, like, like, prefix, prefix, maxSearchResults)
	if err != nil {
		return nil, fmt.Errorf("search users for %s: %w", req.UserID, err)
	}
	users, err := scanUsers(rows)
	if err != nil {
		return nil, fmt.Errorf("search users for %s: %w", req.UserID, err)
	}
	if err := withProperties(ctx, b.s.db, users); err != nil {
		return nil, err
	}
	return &ecbserver.SearchUsersResponse{Users: users}, nil
}

// escapeLike escapes the LIKE wildcards of s (with '\').
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// AddContact makes the two users each other's contacts. Any registered user
// may add any other; anonymous visitors are nobody's contacts.
func (b *ecbBackend) AddContact(ctx context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	return b.changeContact(ctx, req, `INSERT OR IGNORE INTO contacts(user_id, contact_id) VALUES (?1, ?2), (?2, ?1)`)
}

// RemoveContact ends the contact both ways.
func (b *ecbBackend) RemoveContact(ctx context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	return b.changeContact(ctx, req, `DELETE FROM contacts WHERE (user_id = ?1 AND contact_id = ?2) OR (user_id = ?2 AND contact_id = ?1)`)
}

func (b *ecbBackend) changeContact(ctx context.Context, req *ecbserver.ContactRequest, stmt string) (*ecbserver.ContactResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("contact %s-%s: begin: %w", req.UserID, req.ContactID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := b.requireRegistered(ctx, tx, req.UserID); err != nil {
		return nil, err
	}
	contact, err := loadUser(ctx, tx, req.ContactID)
	if err != nil {
		return nil, err
	}
	user, err := loadUser(ctx, tx, req.UserID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, stmt, req.UserID, req.ContactID); err != nil {
		return nil, fmt.Errorf("contact %s-%s: %w", req.UserID, req.ContactID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("contact %s-%s: commit: %w", req.UserID, req.ContactID, err)
	}
	return &ecbserver.ContactResponse{Contact: *contact, User: *user}, nil
}

// SetProfile sets the named properties; a user keeps at most
// ecbserver.MaxProfileProperties in all.
func (b *ecbBackend) SetProfile(ctx context.Context, req *ecbserver.SetProfileRequest) (*ecbserver.ProfileResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("set profile of %s: begin: %w", req.UserID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := b.requireRegistered(ctx, tx, req.UserID); err != nil {
		return nil, err
	}
	for k, v := range req.Properties {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_properties(user_id, name, value) VALUES (?, ?, ?)
			ON CONFLICT(user_id, name) DO UPDATE SET value = excluded.value`, req.UserID, k, v); err != nil {
			return nil, fmt.Errorf("set profile of %s: %w", req.UserID, err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_properties WHERE user_id = ?`, req.UserID).Scan(&n); err != nil {
		return nil, fmt.Errorf("set profile of %s: count: %w", req.UserID, err)
	}
	if n > ecbserver.MaxProfileProperties {
		return nil, ecbserver.InvalidArgument(fmt.Sprintf("a user has at most %d profile properties", ecbserver.MaxProfileProperties))
	}
	return b.commitProfile(ctx, tx, req.UserID)
}

// DeleteProfileProperty removes one property (none is no error).
func (b *ecbBackend) DeleteProfileProperty(ctx context.Context, req *ecbserver.DeleteProfilePropertyRequest) (*ecbserver.ProfileResponse, error) {
	tx, err := b.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("delete profile property of %s: begin: %w", req.UserID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := b.requireRegistered(ctx, tx, req.UserID); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM user_properties WHERE user_id = ? AND name = ?`, req.UserID, req.Name); err != nil {
		return nil, fmt.Errorf("delete profile property of %s: %w", req.UserID, err)
	}
	return b.commitProfile(ctx, tx, req.UserID)
}

func (b *ecbBackend) commitProfile(ctx context.Context, tx *sql.Tx, userID string) (*ecbserver.ProfileResponse, error) {
	u, err := loadUser(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("profile of %s: commit: %w", userID, err)
	}
	return &ecbserver.ProfileResponse{User: *u}, nil
}

// requireRegistered is requireUser for the calls anonymous visitors may not
// make (ECB refuses them first; this is the backend's own rule).
func (b *ecbBackend) requireRegistered(ctx context.Context, q querier, id string) error {
	var visitor int
	err := q.QueryRowContext(ctx, `SELECT visitor FROM users WHERE id = ?`, id).Scan(&visitor)
	if errors.Is(err, sql.ErrNoRows) {
		return ecbserver.NotFound("no user " + strconv.Quote(id))
	}
	if err != nil {
		return fmt.Errorf("look up user %s: %w", id, err)
	}
	if visitor != 0 {
		return ecbserver.Forbidden("anonymous visitors have no contacts or profile")
	}
	return nil
}

// loadUser reads a registered user with their properties; a visitor or an
// unknown id is 404.
func loadUser(ctx context.Context, q querier, id string) (*ecbserver.User, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name FROM users WHERE id = ? AND visitor = 0`, id)
	if err != nil {
		return nil, fmt.Errorf("load user %s: %w", id, err)
	}
	users, err := scanUsers(rows)
	if err != nil {
		return nil, fmt.Errorf("load user %s: %w", id, err)
	}
	if len(users) == 0 {
		return nil, ecbserver.NotFound("no user " + strconv.Quote(id))
	}
	if err := withProperties(ctx, q, users); err != nil {
		return nil, err
	}
	return &users[0], nil
}

// scanUsers reads (id, name) rows and closes them.
func scanUsers(rows *sql.Rows) ([]ecbserver.User, error) {
	defer rows.Close()
	users := []ecbserver.User{}
	for rows.Next() {
		var u ecbserver.User
		if err := rows.Scan(&u.ID, &u.Name); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// withProperties fills in the profile properties of users.
func withProperties(ctx context.Context, q querier, users []ecbserver.User) error {
	if len(users) == 0 {
		return nil
	}
	at := make(map[string]int, len(users))
	args := make([]any, len(users))
	for i, u := range users {
		at[u.ID] = i
		args[i] = u.ID
	}
	rows, err := q.QueryContext(ctx, `SELECT user_id, name, value FROM user_properties
		WHERE user_id IN (?`+strings.Repeat(",?", len(users)-1)+`)`, args...)
	if err != nil {
		return fmt.Errorf("load profile properties: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return fmt.Errorf("load profile properties: %w", err)
		}
		u := &users[at[id]]
		if u.Properties == nil {
			u.Properties = map[string]string{}
		}
		u.Properties[k] = v
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load profile properties: %w", err)
	}
	return nil
}
