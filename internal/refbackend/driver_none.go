//go:build sqlite_none

package refbackend

// No SQLite driver: only for measuring how long the rest of ECB takes to
// build (bench/sqlite/build.sh); opening a database fails.

const driverName = "none"

const sqlDriver = "none"

func driverDSN(path string) string { return path }
