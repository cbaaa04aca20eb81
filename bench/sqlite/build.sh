#!/bin/sh
# Cold-build time of ./cmd/ecb with each SQLite driver of the reference
# backend, side by side: the variants alternate within each round, every build
# starts from an empty GOCACHE, the module cache stays warm (run
# `go mod download` first; downloads are not timed). One JSON line per build,
# with the load average before it (the machine may be shared).
#
#   bench/sqlite/build.sh [ROUNDS] [VARIANTS...]
#
# A variant is a build-tag set: "sqlite_modernc", "sqlite_ncruces",
# "sqlite_mattn sqlite_fts5", "sqlite_mattn libsqlite3", or "none" (no driver:
# the rest of ECB alone, for reference; its binary cannot open a database).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-1}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- none sqlite_ncruces "sqlite_mattn sqlite_fts5" "sqlite_mattn libsqlite3" sqlite_modernc
GO=${GO:-go}
out=$(mktemp -d)
trap 'chmod -R u+w "$out"; rm -rf "$out"' EXIT
$GO mod download
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for v in "$@"; do
    tags=$(echo "$v" | tr ' ' ',')
    [ "$v" = none ] && tags=sqlite_none
    cache="$out/cache"
    rm -rf "$cache"; mkdir -p "$cache"
    load=$(cut -d' ' -f1 /proc/loadavg)
    start=$(date +%s.%N)
    GOCACHE="$cache" GOFLAGS=-modcacherw $GO build -tags "$tags" -o "$out/ecb" ./cmd/ecb
    end=$(date +%s.%N)
    printf '{"bench":"sqlite-build","round":%d,"tags":"%s","seconds":%.1f,"load1":%s,"cores":%d,"go":"%s"}\n' \
      "$r" "$tags" "$(echo "$end - $start" | bc)" "$load" "$(nproc)" "$($GO env GOVERSION)"
  done
  r=$((r + 1))
done
