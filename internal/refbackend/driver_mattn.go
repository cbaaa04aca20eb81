//go:build sqlite_mattn && !sqlite_none

package refbackend

import (
	"fmt"
	"net/url"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// driverName names the SQLite driver compiled in (benchmarks report it).
const driverName = "github.com/mattn/go-sqlite3"

const sqlDriver = "sqlite3"

// driverDSN is the plain-file-name form: the driver strips the query before
// SQLite sees the name, so no URI escaping rules apply to the path itself.
func driverDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}
