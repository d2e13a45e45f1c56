#!/usr/bin/env bash
# bench/tfb/run.sh - the TechEmpower (TFB) test types, side by side in one
# run: hellepoll's examples/tfb against the Node.js (bench/tfb/node) and
# Tornado (bench/tfb/tornado) peers, on one throw-away PostgreSQL 15
# (examples/tfb/setup-db.sh). Each app runs alone with one worker pinned to
# CPU 0; PostgreSQL and wrk share CPU 1. For every test type a bounded wrk
# run gives req/s and p99; the app's CPU time (utime+stime of its process
# tree from /proc/PID/stat) gives requests per app-CPU-second; ratios are
# against each peer. Each app passes tests/tfb/check.py before it is timed.
# Everything timed happens under flock /tmp/hp-bench.lock.
#
#   bench/tfb/run.sh                      all apps, all test types, 10 s each
#   bench/tfb/run.sh --apps "node tornado" --tests "db fortunes" --duration 5
#   bench/tfb/run.sh --report DIR         rebuild results.md and chart.png from DIR
#
# Writes DIR/results.md, DIR/results.tsv, DIR/chart.png (matplotlib) and the raw
# wrk outputs under bench/results/tfb-<date>/; full runs (default apps and
# tests) also copy results.md and chart.png to bench/tfb/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

all_apps="hellepoll node tornado"
all_tests="json plaintext db queries fortunes updates cached-queries"
apps=$all_apps
tests=$all_tests
dur=10
warm=3
rounds=1
conns=256
pool=8
hp_pool=1
build_dir=$repo/build/bench-tfb
out=""
do_build=1
do_check=1
publish=auto
use_lock=1
hp_args=""
pg_socket=0
lock=/tmp/hp-bench.lock
wait_max=1800
host=127.0.0.1
port=18300
app_cpu=0
other_cpu=1
py=/usr/bin/python3 # Debian's, which has tornado and asyncpg

usage() {
    cat <<EOF
usage: $0 [options]
  --apps LIST        any of: $all_apps (default all; hellepoll is skipped when
                     examples/tfb/tfb is not built)
  --tests LIST       any of: $all_tests
  --rounds N         rounds over all apps (interleaved); medians are reported (default $rounds)
  --duration S       seconds per timed wrk run (default $dur)
  --warmup S         seconds of untimed wrk per test type and app first (default $warm)
  --connections N    wrk connections (default $conns)
  --pool N           database connections of each peer (default $pool)
  --hellepoll-pool N database connections of hellepoll (default $hp_pool; each app
                     gets the pool size it does best with: hellepoll pipelines, so
                     few connections carry many queries each, while node's pg and
                     asyncpg need a connection per query in flight; the sweep is in
                     results.md)
  --pg-socket        every app reaches PostgreSQL over its Unix socket instead of
                     TCP on 127.0.0.1 (on loopback TCP the sender pays the receiver's
                     protocol work too, which a separate database machine would do)
  --hellepoll-args "ARGS"  more flags for examples/tfb (e.g. "--batch 4")
  --build-dir DIR    Release build of hellepoll (default $build_dir)
  --no-build         use the binary already in the build directory
  --no-check         do not run tests/tfb/check.py on each app first
  --out DIR          results directory (default bench/results/tfb-<date>)
  --publish | --no-publish   copy results.md/chart.png to bench/tfb/ (default: full runs)
  --no-lock          do not take $lock (the caller holds it)
  --report DIR       only rebuild results.md and chart.png from DIR/results.tsv
EOF
    exit 2
}

report_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
    --apps) apps=$2; [ "$publish" = auto ] && publish=0; shift ;;
    --tests) tests=$2; [ "$publish" = auto ] && publish=0; shift ;;
    --rounds) rounds=$2; shift ;;
    --duration) dur=$2; shift ;;
    --warmup) warm=$2; shift ;;
    --connections) conns=$2; shift ;;
    --pool) pool=$2; shift ;;
    --hellepoll-pool) hp_pool=$2; shift ;;
    --hellepoll-args) hp_args=$2; shift ;;
    --pg-socket) pg_socket=1 ;;
    --build-dir) build_dir=$2; shift ;;
    --no-build) do_build=0 ;;
    --no-check) do_check=0 ;;
    --out) out=$2; shift ;;
    --publish) publish=1 ;;
    --no-publish) publish=0 ;;
    --no-lock) use_lock=0 ;;
    --report) report_dir=$2; shift ;;
    *) usage ;;
    esac
    shift
done
[ "$publish" = auto ] && publish=1

publish_report() {
    "$py" "$here/report.py" "$1"
    if [ "$publish" = 1 ]; then
        cp "$1/results.md" "$here/results.md"
        [ -f "$1/chart.png" ] && cp "$1/chart.png" "$here/chart.png"
        echo "published $here/results.md and $here/chart.png"
    fi
}

if [ -n "$report_dir" ]; then
    publish_report "$report_dir"
    cat "$report_dir/results.md"
    exit 0
fi

for tool in wrk taskset flock curl node npm psql cmake; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
"$py" -c 'import tornado, asyncpg' 2>/dev/null ||
    { echo "missing: python3-tornado / python3-asyncpg (Debian)" >&2; exit 1; }

out=${out:-$repo/bench/results/tfb-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/raw"
: >"$out/run.log"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$out/run.log" >&2; }

# ---- the peers' and our own software (untimed) ----------------------------
if [ ! -d "$here/.deps/node_modules/pg" ]; then
    log "installing the npm package pg into bench/tfb/.deps (ignored by git)"
    npm install --no-audit --no-fund --no-save --prefix "$here/.deps" pg@8 >"$out/raw/npm.log" 2>&1 ||
        { tail -5 "$out/raw/npm.log" >&2; exit 1; }
fi
tfb_bin=$build_dir/examples/tfb/tfb
if [ "$do_build" = 1 ] && [[ " $apps " == *" hellepoll "* ]]; then
    log "building Release in $build_dir"
    { cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHP_BUILD_TESTS=OFF &&
        cmake --build "$build_dir" -j2; } >"$out/raw/build.log" 2>&1 ||
        { tail -20 "$out/raw/build.log" >&2; exit 1; }
fi
if [[ " $apps " == *" hellepoll "* ]] && [ ! -x "$tfb_bin" ]; then
    log "SKIPPING hellepoll: $tfb_bin is not built (examples/tfb needs the router, mustache, pg and JSON modules)"
    apps=$(echo " $apps " | sed 's/ hellepoll / /; s/^ *//; s/ *$//')
fi
[ -n "$apps" ] || { log "no app to run"; exit 1; }

# ---- the lock: nothing else timed runs at the same time --------------------
exec 9>"$lock"
if [ "$use_lock" = 1 ]; then
    log "waiting for $lock"
    flock -w "$wait_max" 9 || { log "could not get $lock within $wait_max s"; exit 1; }
fi
ulimit -n "$(ulimit -Hn)"

# ---- processes: everything started here is stopped by its PID -------------
db_dir=$(mktemp -d /tmp/tfb-bench-db.XXXXXX)
chmod 755 "$db_dir"
app_pid=""
cleanup() {
    if [ -n "$app_pid" ]; then
        kill -TERM "$app_pid" 2>/dev/null || true
        wait "$app_pid" 2>/dev/null || true
    fi
    "$repo/examples/tfb/setup-db.sh" "$db_dir/pg" stop || true
    rm -rf "$db_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting PostgreSQL on CPU $other_cpu"
dsn=$(taskset -c "$other_cpu" "$repo/examples/tfb/setup-db.sh" "$db_dir/pg" start)
if [ "$pg_socket" = 1 ]; then # same database, user and password; host is the socket's directory
    dsn=${dsn/host=127.0.0.1/host=$db_dir/pg}
fi
log "database: $dsn"

{
    echo "date: $(date -Is)"
    echo "git: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null) ($(git -C "$repo" status --porcelain 2>/dev/null | wc -l) changed files)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
    echo "postgres: $("$(dirname "$(command -v psql)")/psql" --version)"
    echo "node: $(node --version), pg $(node -p "require('$here/.deps/node_modules/pg/package.json').version")"
    echo "tornado: $("$py" -c 'import tornado, asyncpg; print(tornado.version, "asyncpg", asyncpg.__version__)')"
    echo "wrk: $(wrk --version 2>&1 | head -1)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg) (loadavg; the CPUs are shared)"
    echo "apps: $apps; tests: $tests"
    echo "wrk: -t1 -c$conns -d${dur}s (warm-up ${warm}s), $rounds round(s), medians; pool $hp_pool (hellepoll), $pool (peers); app on CPU $app_cpu, PostgreSQL and wrk on CPU $other_cpu; database over $([ "$pg_socket" = 1 ] && echo "its Unix socket" || echo "TCP 127.0.0.1")"
} >"$out/meta.txt"

app_cmd() { # APP: sets cmd, the app's command line
    case "$1" in
    hellepoll) cmd=("$tfb_bin" --host "$host" --port "$port" --dsn "$dsn" --workers 1 --pool "$hp_pool"
        --max-connections 20000 --max-keepalive-requests 4294967295 $hp_args) ;; # no limits, as the peers
    node) cmd=(env "NODE_PATH=$here/.deps/node_modules" node "$here/node/server.js" --host "$host"
        --port "$port" --dsn "$dsn" --pool "$pool") ;;
    tornado) cmd=("$py" "$here/tornado/server.py" --host "$host" --port "$port" --dsn "$dsn"
        --pool "$pool") ;;
    esac
}

url_of() {
    case "$1" in
    queries) echo "http://$host:$port/queries?queries=20" ;;
    updates) echo "http://$host:$port/updates?queries=20" ;;
    cached-queries) echo "http://$host:$port/cached-queries?count=20" ;;
    *) echo "http://$host:$port/$1" ;;
    esac
}

# cpu_ticks PID: user+system clock ticks of the process and its children's threads.
tree() {
    local p c
    for p in "$@"; do
        echo "$p"
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
    done
}
cpu_ticks() {
    local p sum=0 t
    for p in $(tree "$1"); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat 2>/dev/null || echo 0)
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}
hz=$(getconf CLK_TCK)

run_wrk() { # TEST SECONDS OUTFILE
    local extra=()
    [ "$1" = plaintext ] && extra=(-s "$here/pipeline.lua")
    taskset -c "$other_cpu" wrk -t1 -c"$conns" -d"$2"s --timeout 5s --latency "${extra[@]}" \
        "$(url_of "$1")" >"$3" 2>&1
}

printf 'round\tapp\ttest\trequests\tseconds\treq_per_s\tp99_ms\tapp_cpu_s\terrors\n' >"$out/results.tsv"

for ((round = 1; round <= rounds; round++)); do
for app in $apps; do
    app_cmd "$app"
    log "starting $app on CPU $app_cpu: ${cmd[*]}"
    taskset -c "$app_cpu" "${cmd[@]}" >"$out/raw/$app.log" 2>&1 &
    app_pid=$!
    for ((i = 0; i < 200; i++)); do
        curl -fs -m 1 -o /dev/null "http://$host:$port/plaintext" && break
        kill -0 "$app_pid" 2>/dev/null || { log "$app exited:"; tail -5 "$out/raw/$app.log" >&2; exit 1; }
        sleep 0.05
    done
    if [ "$do_check" = 1 ] && [ "$round" = 1 ]; then
        if ! "$py" "$repo/tests/tfb/check.py" "http://$host:$port" --dsn "$dsn" \
            >"$out/raw/$app-check.txt" 2>&1; then
            log "$app FAILS tests/tfb/check.py (not timed):"
            grep -v '^ok' "$out/raw/$app-check.txt" | head -10 >&2
            exit 1
        fi
        log "$app passes check.py: $(tail -1 "$out/raw/$app-check.txt")"
    fi
    for t in $tests; do
        [ "$warm" -gt 0 ] && run_wrk "$t" "$warm" "$out/raw/$app-$t-warm.txt"
        c0=$(cpu_ticks "$app_pid")
        s0=$(date +%s.%N)
        run_wrk "$t" "$dur" "$out/raw/$app-$t.txt"
        s1=$(date +%s.%N)
        c1=$(cpu_ticks "$app_pid")
        row=$(awk -v round="$round" -v app="$app" -v t="$t" -v cpu="$(((c1 - c0)))" -v hz="$hz" \
            -v secs="$(echo "$s1 - $s0" | bc)" '
            function ms(v) {
                if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                if (v ~ /m$/) return v * 60000; return v * 1000 }
            / requests in / { n = $1 }
            /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
            /Non-2xx or 3xx responses:/ { e += $5 }
            /^Requests\/sec:/ { q = $2 }
            /^ +99%/ { p = ms($2) }
            END { # wrk has no percentiles for pipelined batches (it prints 0.00us)
                  printf "%d\t%s\t%s\t%d\t%.2f\t%.0f\t%s\t%.2f\t%d\n", round, app, t, n, secs, q,
                      (p > 0 ? sprintf("%.2f", p) : "n/a"), cpu / hz, e }' \
            "$out/raw/$app-$t.txt")
        printf '%s\n' "$row" >>"$out/results.tsv"
        log "$(echo "$row" | awk -F'\t' '{ printf "round %s %-9s %-14s %9s req/s  p99 %7s ms  app cpu %6s s  %s errors", $1, $2, $3, $6, $7, $8, $9 }')"
    done
    kill -TERM "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
    app_pid=""
done
done

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/meta.txt"
publish_report "$out"
cat "$out/results.md"
