#!/bin/sh
# Run time of the reference backend's typical calls (BenchmarkStore in
# internal/refbackend: open + migrate, send message, history page, thread
# list, mark read) with each SQLite driver, side by side: the test binaries
# are built first, then run alternately for ROUNDS rounds. One JSON line per
# call and round, with ns/op, B/op and allocs/op.
#
#   bench/sqlite/run.sh [ROUNDS] [VARIANTS...]
#
# Variants are build-tag sets as in build.sh (default: the three drivers).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- sqlite_ncruces sqlite_modernc "sqlite_mattn sqlite_fts5"
GO=${GO:-go}
BENCHTIME=${BENCHTIME:-1s}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=0
for v in "$@"; do
  i=$((i + 1))
  $GO test -c -tags "$(echo "$v" | tr ' ' ',')" -o "$out/t$i" ./internal/refbackend
done
r=1
while [ "$r" -le "$ROUNDS" ]; do
  i=0
  for v in "$@"; do
    i=$((i + 1))
    tags=$(echo "$v" | tr ' ' ',')
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$out/t$i" -test.run '^$' -test.bench '^BenchmarkStore$' -test.benchtime "$BENCHTIME" -test.benchmem |
      awk -v r="$r" -v tags="$tags" -v la="$load" '/^BenchmarkStore\// {
        name = $1; sub(/^BenchmarkStore\//, "", name); sub(/-[0-9]+$/, "", name)
        printf "{\"bench\":\"sqlite-run\",\"round\":%d,\"tags\":\"%s\",\"call\":\"%s\",\"n\":%d,\"ns_op\":%d,\"b_op\":%d,\"allocs_op\":%d,\"load1\":%s}\n", r, tags, name, $2, $3, $5, $7, la }'
  done
  r=$((r + 1))
done
