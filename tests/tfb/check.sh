#!/usr/bin/env bash
# tests/tfb/check.sh TFB_BINARY - the ctest test tfb.check: a throw-away
# PostgreSQL with the TFB schema (examples/tfb/setup-db.sh), the app on a
# free port with two workers, tests/tfb/check.py against it (every TFB rule
# over HTTP, rows read back with psql), then a graceful stop: SIGTERM must
# end the app with status 0. Everything started here is stopped by its PID.
# Exit 77 (ctest: skipped) only when the PostgreSQL binaries are missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:?usage: check.sh TFB_BINARY}

tmp=$(mktemp -d /tmp/hp-tfb-test.XXXXXX)
chmod 755 "$tmp" # the server user (postgres, when we are root) must reach DIR/pg
app_pid=""
cleanup() {
    if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
        kill -KILL "$app_pid" 2>/dev/null || true
    fi
    "$repo/examples/tfb/setup-db.sh" "$tmp/pg" stop || true
    rm -rf "$tmp"
}
trap cleanup EXIT

rc=0
dsn=$("$repo/examples/tfb/setup-db.sh" "$tmp/pg" start) || rc=$?
if [ "$rc" = 3 ]; then
    echo "SKIPPED: tfb.check needs the PostgreSQL 15 server binaries (Debian: postgresql)" >&2
    exit 77
fi
[ "$rc" = 0 ] || { echo "tfb.check: setup-db.sh failed ($rc)" >&2; exit 1; }
echo "database: $dsn"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # 512 concurrent connections
: >"$tmp/app.log"
"$bin" --host 127.0.0.1 --port 0 --dsn "$dsn" --workers 2 --pool 4 >"$tmp/app.log" 2>&1 &
app_pid=$!
port=""
for ((i = 0; i < 600; i++)); do # up to 30 s for the "listening on" line
    port=$(sed -n 's|^tfb: listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/app.log" || true)
    [ -n "$port" ] && break
    kill -0 "$app_pid" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$port" ]; then
    echo "tfb.check: the app did not start:" >&2
    cat "$tmp/app.log" >&2
    exit 1
fi
echo "app: pid $app_pid, port $port"

status=0
python3 "$repo/tests/tfb/check.py" "http://127.0.0.1:$port" --dsn "$dsn" --verbose || status=1

kill -TERM "$app_pid"
for ((i = 0; i < 300; i++)); do # up to 15 s for the graceful stop
    kill -0 "$app_pid" 2>/dev/null || break
    sleep 0.05
done
if kill -0 "$app_pid" 2>/dev/null; then
    echo "tfb.check: the app did not stop within 15 s of SIGTERM" >&2
    status=1
else
    app_rc=0
    wait "$app_pid" || app_rc=$?
    app_pid=""
    if [ "$app_rc" != 0 ]; then
        echo "tfb.check: the app exited with status $app_rc after SIGTERM" >&2
        status=1
    fi
fi
if [ "$status" != 0 ] || grep -q . <(grep -v '^tfb: listening' "$tmp/app.log"); then
    echo "--- app output:"
    cat "$tmp/app.log"
fi
exit "$status"
