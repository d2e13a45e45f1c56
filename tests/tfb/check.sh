#!/usr/bin/env bash
# tests/tfb/check.sh TFB_BINARY [memcached] - the ctest test tfb.check: a throw-away
# PostgreSQL with the TFB schema (examples/tfb/setup-db.sh), the app on a
# free port with two workers, tests/tfb/check.py against it (every TFB rule
# over HTTP, rows read back with psql), then a graceful stop: SIGTERM must
# end the app with status 0. With "memcached" (the build has the memcached
# client) all that again with --memcached on a memcached started here, which
# must hold rows afterwards. Everything started here is stopped by its PID.
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
    if [ -n "${mc_pid:-}" ]; then
        kill -TERM "$mc_pid" 2>/dev/null || true
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

status=0
# run_app NAME ARGS...: the app with ARGS on a free port, check.py against it,
# then SIGTERM, which must end it with status 0 within 15 s.
run_app() {
    local name=$1 port="" app_rc=0 i
    shift
    : >"$tmp/app.log"
    "$bin" --host 127.0.0.1 --port 0 --dsn "$dsn" --workers 2 --pool 4 "$@" >"$tmp/app.log" 2>&1 &
    app_pid=$!
    for ((i = 0; i < 600; i++)); do # up to 30 s for the "listening on" line
        port=$(sed -n 's|^tfb: listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/app.log" || true)
        [ -n "$port" ] && break
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        echo "tfb.check ($name): the app did not start:" >&2
        cat "$tmp/app.log" >&2
        status=1
        return
    fi
    echo "== $name: app pid $app_pid, port $port, options: $*"
    python3 "$repo/tests/tfb/check.py" "http://127.0.0.1:$port" --dsn "$dsn" --verbose || status=1
    kill -TERM "$app_pid"
    for ((i = 0; i < 300; i++)); do # up to 15 s for the graceful stop
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$app_pid" 2>/dev/null; then
        echo "tfb.check ($name): the app did not stop within 15 s of SIGTERM" >&2
        status=1
        return
    fi
    wait "$app_pid" || app_rc=$?
    app_pid=""
    if [ "$app_rc" != 0 ]; then
        echo "tfb.check ($name): the app exited with status $app_rc after SIGTERM" >&2
        status=1
    fi
    if [ "$status" != 0 ] || grep -qv '^tfb: listening' "$tmp/app.log"; then
        echo "--- app output ($name):"
        cat "$tmp/app.log"
    fi
}

run_app "in-process LRU cache"

# With the memcached module: again with the cache in a real memcached.
mc_pid=""
if [ "${2:-}" = memcached ]; then
    if ! command -v memcached >/dev/null; then
        echo "SKIPPED (part): --memcached needs the memcached server (Debian: memcached)" >&2
    else
        mc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        memcached -l 127.0.0.1 -p "$mc_port" -U 0 -m 16 -u nobody >"$tmp/memcached.log" 2>&1 &
        mc_pid=$!
        run_app "memcached" --memcached "127.0.0.1:$mc_port"
        items=$(python3 - "$mc_port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"stats\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    data += s.recv(65536)
print(next(l.split()[2] for l in data.decode().splitlines() if l.startswith("STAT curr_items ")))
PY
        ) || items=0
        echo "memcached holds $items rows after the checks"
        [ "${items:-0}" -gt 0 ] || { echo "tfb.check (memcached): nothing was cached in memcached" >&2; status=1; }
        kill -TERM "$mc_pid" 2>/dev/null || true
        wait "$mc_pid" 2>/dev/null || true
        mc_pid=""
    fi
fi
exit "$status"
