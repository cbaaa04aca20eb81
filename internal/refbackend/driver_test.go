package refbackend

import (
	"path/filepath"
	"testing"
)

// TestDriverSettings checks that the driver compiled in applies openDB's
// settings to every connection of the pool, and that a transaction begins
// IMMEDIATE (takes the write lock at BEGIN).
func TestDriverSettings(t *testing.T) {
	ctx := t.Context()
	db, err := openDB(ctx, filepath.Join(t.TempDir(), "settings.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	// Three connections held at once are three distinct connections.
	for i := range 3 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for pragma, want := range map[string]string{
			"busy_timeout": "5000", "journal_mode": "wal", "synchronous": "1", "foreign_keys": "1",
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
				t.Errorf("connection %d (driver %s): PRAGMA %s = %q, %v; want %q", i, driverName, pragma, got, err, want)
			}
		}
	}

	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	tx1, err := c1.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback() //nolint:errcheck // the test ends here
	if _, err := c2.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	// A deferred BEGIN would succeed here; an immediate one finds the write
	// lock taken by tx1 and, with no timeout, fails at once.
	tx2, err := c2.BeginTx(ctx, nil)
	if err == nil {
		tx2.Rollback() //nolint:errcheck // failing anyway
		t.Fatalf("driver %s: a second transaction began while the first held the write lock: not BEGIN IMMEDIATE", driverName)
	}
}

// TestFTS5 checks that the SQLite compiled in has FTS5, which message search
// will need: a virtual table is created, filled and matched.
func TestFTS5(t *testing.T) {
	db, err := openDB(t.Context(), filepath.Join(t.TempDir(), "fts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE VIRTUAL TABLE search USING fts5(body)`,
		`INSERT INTO search(rowid, body) VALUES (1, 'the quick brown fox'), (2, 'a lazy dog')`,
	} {
		if _, err := db.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s: %v (driver %s)", s, err, driverName)
		}
	}
	var id int
	if err := db.QueryRowContext(t.Context(), `SELECT rowid FROM search WHERE search MATCH 'brown'`).Scan(&id); err != nil || id != 1 {
		t.Fatalf("MATCH 'brown' = %d, %v; want 1", id, err)
	}
}
