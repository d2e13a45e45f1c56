#!/usr/bin/env bash
# examples/tfb/run.sh - one command for the TFB app: build it (Release, in
# build/release unless --build-dir says otherwise) if needed, start a
# throw-away PostgreSQL with the TFB schema (setup-db.sh, in --db-dir,
# default /tmp/hellepoll-tfb-db, kept for the next run) and the app on it;
# Ctrl-C stops the app and then the database, both by PID.
#
#   examples/tfb/run.sh [--build-dir DIR] [--db-dir DIR] [tfb options, e.g. --port 8080 --workers 2]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$repo/build/release
db=/tmp/hellepoll-tfb-db
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --db-dir) db=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done

if [ ! -x "$build/examples/tfb/tfb" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 --target tfb >/dev/null
fi
[ -x "$build/examples/tfb/tfb" ] || {
    echo "run.sh: examples/tfb was left out of the build (it needs libpq through pkg-config)" >&2
    exit 1
}

dsn=$("$here/setup-db.sh" "$db" start)
echo "database: $dsn (in $db)"
app=""
stop() {
    if [ -n "$app" ]; then
        kill -TERM "$app" 2>/dev/null || true
        wait "$app" 2>/dev/null || true
    fi
    "$here/setup-db.sh" "$db" stop
}
trap stop EXIT
trap 'exit 0' INT TERM
"$build/examples/tfb/tfb" --dsn "$dsn" "${args[@]}" &
app=$!
wait "$app" || true
app=""
