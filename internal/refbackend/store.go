package refbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// busyTimeout is how long a writer waits for another writer's lock before
// SQLITE_BUSY. Writes here are a few rows, so waiting is always right.
const busyTimeout = 5 * time.Second

// openDB opens the SQLite file at path with the settings every connection of
// the pool needs; the driver (driver_*.go, chosen by build tags) applies them
// to each new connection: busy_timeout, journal_mode=WAL, synchronous=NORMAL
// (durable across application crashes in WAL mode; only a power loss can drop
// the last commits, which a demo backend can accept), foreign_keys=ON, and
// BEGIN IMMEDIATE for every transaction (a deferred transaction that reads
// then writes can fail with SQLITE_BUSY without waiting, when another writer
// got there first).
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite %q: the path must not contain '?'", path)
	}
	db, err := sql.Open(sqlDriver, driverDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: journal mode is %q, want wal", path, mode)
	}
	return db, nil
}

// migration is one numbered step of the schema. Versions are increasing;
// a released migration is never edited, only followed by another. A gap
// is allowed (a version kept for work that lands later, such as 11 for the
// mentions beside 12's offline nudges): each step is applied when its own
// version is not recorded, so a step filled into a gap later runs then.
type migration struct {
	version int
	name    string
	up      func(ctx context.Context, tx *sql.Tx) error
}

func execAll(stmts ...string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%.60s...: %w", s, err)
			}
		}
		return nil
	}
}

// schemaV1 is the first schema. Times are unix milliseconds.
var schemaV1 = execAll(
	`CREATE TABLE users (
		id            TEXT PRIMARY KEY,
		name          TEXT NOT NULL,
		password_hash BLOB NOT NULL,
		password_salt BLOB NOT NULL,
		password_iter INTEGER NOT NULL
	)`,
	`CREATE TABLE contacts (
		user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		contact_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		PRIMARY KEY (user_id, contact_id)
	)`,
	`CREATE TABLE user_roles (
		user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		role    TEXT NOT NULL,
		PRIMARY KEY (user_id, role)
	)`,
	`CREATE TABLE workgroup_members (
		workgroup TEXT NOT NULL,
		user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		PRIMARY KEY (workgroup, user_id)
	)`,
	`CREATE TABLE sessions (
		token_hash BLOB PRIMARY KEY,
		user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	)`,
	`CREATE INDEX sessions_expires ON sessions(expires_at)`,
	`CREATE TABLE threads (
		id         TEXT PRIMARY KEY,
		subject    TEXT NOT NULL DEFAULT '',
		created_by TEXT NOT NULL REFERENCES users(id),
		create_key TEXT,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	)`,
	// create_key makes createThread idempotent per creator.
	`CREATE UNIQUE INDEX threads_create_key ON threads(created_by, create_key) WHERE create_key IS NOT NULL`,
	`CREATE TABLE thread_members (
		thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
		user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		access    INTEGER NOT NULL DEFAULT 3,
		PRIMARY KEY (thread_id, user_id)
	)`,
	`CREATE INDEX thread_members_user ON thread_members(user_id)`,
	// seq is the stable order of messages; AUTOINCREMENT never reuses a seq,
	// so a cursor can never point at a different message later.
	`CREATE TABLE messages (
		seq               INTEGER PRIMARY KEY AUTOINCREMENT,
		id                TEXT NOT NULL UNIQUE,
		thread_id         TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
		author_id         TEXT NOT NULL REFERENCES users(id),
		body              TEXT NOT NULL,
		data              TEXT,
		client_message_id TEXT,
		created_at        INTEGER NOT NULL
	)`,
	`CREATE INDEX messages_thread_seq ON messages(thread_id, seq)`,
	`CREATE UNIQUE INDEX messages_client_id ON messages(thread_id, author_id, client_message_id)
		WHERE client_message_id IS NOT NULL`,
)

// schemaV3 adds read marks (contract 1.1, markRead): per member of a thread,
// the seq of the last message they have read, 0 for none. A member who
// leaves loses the row and the mark with it. Existing members start at their
// own last message: an author has read what they wrote, and what came before.
var schemaV3 = execAll(
	`ALTER TABLE thread_members ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0`,
	`UPDATE thread_members SET read_seq = COALESCE((SELECT MAX(m.seq) FROM messages m
		WHERE m.thread_id = thread_members.thread_id AND m.author_id = thread_members.user_id), 0)`,
)

// schemaV4 adds whispers (contract 1.3: a message's visibility, "" for
// everyone, "agents" for agents and supervisors only) and the table of the
// events ECB posted to POST /ecb/v1/callbacks.
var schemaV4 = execAll(
	`ALTER TABLE messages ADD COLUMN visibility TEXT NOT NULL DEFAULT ''`,
	`CREATE TABLE callbacks (
		seq         INTEGER PRIMARY KEY AUTOINCREMENT,
		id          TEXT NOT NULL UNIQUE,
		type        TEXT NOT NULL,
		request_id  TEXT NOT NULL DEFAULT '',
		body        TEXT NOT NULL,
		received_at INTEGER NOT NULL
	)`,
	`CREATE INDEX callbacks_request ON callbacks(request_id, seq)`,
)

// migrate applies every migration the database has not recorded yet, each in
// its own transaction together with its schema_migrations row, so a crash
// leaves the database at a clean version and two processes starting at once
// cannot apply a step twice.
func migrate(ctx context.Context, db *sql.DB, steps []migration, now time.Time) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if latest := steps[len(steps)-1].version; current > latest {
		return fmt.Errorf("migrate: database is at version %d, newer than this program's %d", current, latest)
	}
	for i, m := range steps {
		if m.version <= 0 || i > 0 && m.version <= steps[i-1].version {
			return fmt.Errorf("migrate: migration %q has version %d, not above the one before it", m.name, m.version)
		}
		if err := applyMigration(ctx, db, m, now); err != nil {
			return fmt.Errorf("migrate: %d %s: %w", m.version, m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, m.version).Scan(&one)
	if err == nil {
		return nil // applied before, maybe by another process a moment ago
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := m.up(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, now.UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
