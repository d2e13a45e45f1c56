#!/usr/bin/env bash
# setup-db.sh - a throw-away PostgreSQL 15 cluster with the TechEmpower
# (TFB) schema, for examples/tfb, its test and bench/tfb.
#
#   setup-db.sh DIR [start] [PORT]  create the cluster in DIR/data on first use (database
#                                   hello_world, user benchmarkdbuser / benchmarkdbpass,
#                                   World with 10,000 rows, Fortune with the 12 canonical
#                                   rows), start it on 127.0.0.1:PORT (a free port if not
#                                   given) and print the libpq DSN on stdout
#   setup-db.sh DIR stop            fast shutdown of the postmaster by its PID, waits for it
#   setup-db.sh DIR dsn             print the DSN of the running cluster
#   setup-db.sh DIR pid             print the postmaster's PID
#   setup-db.sh DIR reload          reset World to fresh random numbers
#   setup-db.sh DIR psql ARGS...    psql as benchmarkdbuser into hello_world
#
# PostgreSQL refuses to run as root: as root the server runs as the
# unprivileged user "postgres" (runuser) and DIR is chowned to it (its
# parent must be searchable by that user; /tmp is). Only loopback: TCP on
# 127.0.0.1 (password, scram-sha-256) and a Unix socket in DIR (superuser,
# trust). Exit status 3 means the PostgreSQL binaries are missing.
# HP_PG_BINDIR overrides where initdb/postgres/pg_ctl/psql are looked for.
set -euo pipefail

usage() {
    sed -n '2,21p' "$0" >&2
    exit 2
}

[ $# -ge 1 ] || usage
dir=$1
shift
cmd=${1:-start}
[ $# -gt 0 ] && shift

bindir() {
    local d
    for d in "${HP_PG_BINDIR:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin \
        "$(pg_config --bindir 2>/dev/null || true)"; do
        [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] &&
            { echo "$d"; return 0; }
    done
    return 1
}

bin=$(bindir) || { echo "setup-db: PostgreSQL server binaries not found" >&2; exit 3; }
psql_bin=$bin/psql
[ -x "$psql_bin" ] || psql_bin=$(command -v psql) ||
    { echo "setup-db: psql not found" >&2; exit 3; }

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

running_pid() { # the postmaster's PID if it is alive
    local pid
    [ -f "$dir/data/postmaster.pid" ] || return 1
    pid=$(head -1 "$dir/data/postmaster.pid")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

port_of() { sed -n 4p "$dir/data/postmaster.pid"; }

dsn() {
    echo "host=127.0.0.1 port=$(port_of) dbname=hello_world user=benchmarkdbuser password=benchmarkdbpass"
}

super_psql() { # psql as the superuser over the Unix socket
    as_server "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(port_of)" -U postgres "$@"
}

load_world() {
    super_psql -d hello_world <<'SQL'
TRUNCATE World;
INSERT INTO World (id, randomNumber)
SELECT i, floor(random() * 10000 + 1)::integer FROM generate_series(1, 10000) AS i;
ANALYZE World;
SQL
}

create_schema() {
    super_psql -d postgres <<'SQL'
CREATE ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass';
CREATE DATABASE hello_world OWNER benchmarkdbuser ENCODING 'UTF8' TEMPLATE template0;
SQL
    # The tables belong to benchmarkdbuser (it updates World).
    super_psql -d hello_world <<'SQL'
SET ROLE benchmarkdbuser;
CREATE TABLE World (
    id integer NOT NULL PRIMARY KEY,
    randomNumber integer NOT NULL DEFAULT 0
);
CREATE TABLE Fortune (
    id integer NOT NULL PRIMARY KEY,
    message varchar(2048) NOT NULL
);
INSERT INTO Fortune (id, message) VALUES
    (1, 'fortune: No such file or directory'),
    (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
    (3, 'After enough decimal places, nobody gives a damn.'),
    (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
    (5, 'A computer program does what you tell it to do, not what you want it to do.'),
    (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
    (7, 'Any program that runs right is obsolete.'),
    (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
    (9, 'Feature: A bug with seniority.'),
    (10, 'Computers make very fast, very accurate mistakes.'),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, 'フレームワークのベンチマーク');
ANALYZE Fortune;
SQL
    load_world
}

start() {
    local port=${1:-} fresh=0 pid
    if pid=$(running_pid); then
        dsn
        return 0
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        chmod 700 "$dir"
        # UTF-8 with the C collation: ORDER BY is byte order, as TFB's fortunes sort.
        as_server "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
        fresh=1
    fi
    [ -n "$port" ] || port=$(free_port)
    # Settings in the spirit of TFB's database image: durability off (a
    # throw-away benchmark database), enough connections for the pools.
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB -c log_min_messages=warning" \
        >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    if [ "$fresh" = 1 ]; then
        create_schema || { echo "setup-db: loading the schema failed" >&2; exit 1; }
    fi
    dsn
}

stop() {
    local pid i
    pid=$(running_pid) || return 0
    kill -CONT "$pid" 2>/dev/null || true
    kill -INT "$pid" 2>/dev/null || return 0 # SIGINT: fast shutdown
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "setup-db: postmaster $pid did not stop; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

case "$cmd" in
start) start "$@" ;;
stop) stop ;;
dsn) running_pid >/dev/null || { echo "setup-db: not running" >&2; exit 1; }; dsn ;;
pid) running_pid || { echo "setup-db: not running" >&2; exit 1; } ;;
reload) running_pid >/dev/null || { echo "setup-db: not running" >&2; exit 1; }; load_world ;;
psql)
    running_pid >/dev/null || { echo "setup-db: not running" >&2; exit 1; }
    "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$(dsn)" "$@"
    ;;
*) usage ;;
esac
