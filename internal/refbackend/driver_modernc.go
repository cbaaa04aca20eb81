//go:build sqlite_modernc && !sqlite_mattn && !sqlite_none

package refbackend

import (
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// driverName names the SQLite driver compiled in (benchmarks report it).
const driverName = "modernc.org/sqlite"

const sqlDriver = "sqlite"

// driverDSN is the plain-file-name form: the driver strips the query before
// SQLite sees the name, so no URI escaping rules apply to the path itself.
func driverDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}
