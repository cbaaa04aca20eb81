//go:build !sqlite_none && !sqlite_mattn && !sqlite_modernc

package refbackend

import (
	"fmt"
	"net/url"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver" // registers the "sqlite3" driver
	"github.com/ncruces/go-sqlite3/ext/fts5"
)

// driverName names the SQLite driver compiled in (benchmarks report it).
const driverName = "github.com/ncruces/go-sqlite3"

const sqlDriver = "sqlite3"

// FTS5 is an extension in this driver: register it on every new connection.
func init() { sqlite3.AutoExtension(fts5.Register) }

// driverDSN is a file: URI (the driver reads _pragma and _txlock only from
// that form); the path is escaped as a URI path.
func driverDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}
