#!/usr/bin/env bash
# pgtmp.sh - a throw-away PostgreSQL 15 server for tests and benchmarks.
#
#   pgtmp.sh init  DIR          initdb into DIR/data (DIR is created; owned by the server user)
#   pgtmp.sh start DIR [PORT]   start on 127.0.0.1:PORT (a free one if not given), Unix socket
#                               in DIR; prints "PORT=<p> PID=<postmaster pid> SOCKDIR=<DIR>"
#                               and returns once the server accepts connections
#                               With HP_PGTMP_OWNER=PID in the environment, a watchdog
#                               stops the server and removes DIR once process PID is gone
#                               (a test that crashed never reaches its own cleanup)
#   pgtmp.sh stop  DIR          fast shutdown of the postmaster by PID, waits until it is gone
#   pgtmp.sh psql  DIR ARGS...  psql as the superuser "postgres" into database "postgres"
#   pgtmp.sh bin                print the directory of the server binaries (exit 1 if missing)
#
# PostgreSQL refuses to run as root: as root the server runs as the unprivileged
# user "postgres" (runuser), and DIR is chowned to it. The superuser role is
# "postgres", trust authentication on loopback and the socket only. Environment:
# HP_PG_BINDIR overrides where initdb/postgres/pg_ctl are looked for.
set -euo pipefail

bindir() {
    local d
    for d in "${HP_PG_BINDIR:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin \
        "$(pg_config --bindir 2>/dev/null || true)"; do
        [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    return 1
}

as_server() { # run a command as the server's user
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd=${1:-}
case "$cmd" in
bin)
    bindir
    ;;
init)
    dir=$2
    bin=$(bindir) || { echo "pgtmp: postgres binaries not found" >&2; exit 2; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    as_server "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    ;;
start)
    dir=$2
    port=${3:-$(free_port)}
    bin=$(bindir) || { echo "pgtmp: postgres binaries not found" >&2; exit 2; }
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50 -c shared_buffers=32MB" \
        >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    pid=$(head -1 "$dir/data/postmaster.pid")
    owner=${HP_PGTMP_OWNER:-}
    if [ -n "$owner" ]; then
        # The watchdog: detached from the caller's pipes, it ends with the server.
        (
            while kill -0 "$pid" 2>/dev/null; do
                if ! kill -0 "$owner" 2>/dev/null; then
                    "$0" stop "$dir" || true
                    rm -rf "$dir"
                    exit 0
                fi
                sleep 1
            done
        ) </dev/null >/dev/null 2>&1 &
    fi
    echo "PORT=$port PID=$pid SOCKDIR=$dir"
    ;;
stop)
    dir=$2
    [ -f "$dir/data/postmaster.pid" ] || exit 0
    pid=$(head -1 "$dir/data/postmaster.pid")
    kill -CONT "$pid" 2>/dev/null || true
    kill -INT "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.1
    done
    echo "pgtmp: postmaster $pid did not stop" >&2
    kill -KILL "$pid" 2>/dev/null || true
    exit 1
    ;;
psql)
    dir=$2; shift 2
    bin=$(bindir) || exit 2
    port=$(sed -n 4p "$dir/data/postmaster.pid")
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres "$@"
    ;;
*)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
