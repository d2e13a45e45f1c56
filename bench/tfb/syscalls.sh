#!/usr/bin/env bash
# bench/tfb/syscalls.sh - system calls and TCP segments per request of
# examples/tfb, per test type: the app (one worker, pinned to CPU 0) on a
# throw-away PostgreSQL (examples/tfb/setup-db.sh, CPU 1) under wrk (CPU 1),
# counted with perf's syscall tracepoints on the app's PID (perf stat -p,
# which costs the app far less than strace -c) and with the segs_out of the
# app's sockets to PostgreSQL (ss -ti) before and after. Also prints the
# app's CPU time per request. Under flock /tmp/hp-bench.lock (it loads the
# machine), like everything timed.
#
#   bench/tfb/syscalls.sh [--tests "db queries"] [--duration S] [--pool N]
#                         [--build-dir DIR] [--connections N] [--strace]
#                         [--app-args "--batch 4"]
#
# --strace: count with strace -c -f -p instead (much slower for the app, so
# its batches grow: fewer calls per request than without it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tests="db queries updates fortunes"
dur=5
pool=8
conns=256
build_dir=$repo/build/bench-tfb
use_strace=0
app_args=""
host=127.0.0.1
port=18310
while [ $# -gt 0 ]; do
    case "$1" in
    --tests) tests=$2; shift ;;
    --duration) dur=$2; shift ;;
    --pool) pool=$2; shift ;;
    --connections) conns=$2; shift ;;
    --build-dir) build_dir=$2; shift ;;
    --strace) use_strace=1 ;;
    --app-args) app_args=$2; shift ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
    shift
done
tfb=$build_dir/examples/tfb/tfb
[ -x "$tfb" ] || { echo "build $tfb first (Release)" >&2; exit 1; }
for tool in perf wrk ss flock taskset curl; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

exec 9>/tmp/hp-bench.lock
echo "waiting for /tmp/hp-bench.lock" >&2
flock -w 1800 9

db_dir=$(mktemp -d /tmp/tfb-sys-db.XXXXXX)
chmod 755 "$db_dir"
app_pid=""
cleanup() {
    [ -n "$app_pid" ] && { kill -TERM "$app_pid" 2>/dev/null || true; wait "$app_pid" 2>/dev/null || true; }
    "$repo/examples/tfb/setup-db.sh" "$db_dir/pg" stop || true
    rm -rf "$db_dir"
}
trap cleanup EXIT
dsn=$(taskset -c 1 "$repo/examples/tfb/setup-db.sh" "$db_dir/pg" start)
pgport=$(echo "$dsn" | sed 's/.*port=\([0-9]*\).*/\1/')
taskset -c 0 "$tfb" --host $host --port $port --dsn "$dsn" --workers 1 --pool "$pool" \
    --max-connections 20000 --max-keepalive-requests 4294967295 $app_args >"$db_dir/app.log" 2>&1 &
app_pid=$!
for ((i = 0; i < 200; i++)); do
    curl -fs -m 1 -o /dev/null "http://$host:$port/db" && break
    sleep 0.05
done

url_of() {
    case "$1" in
    queries | updates) echo "http://$host:$port/$1?queries=20" ;;
    *) echo "http://$host:$port/$1" ;;
    esac
}
segs() { # segments the app sent to PostgreSQL so far
    ss -tin "dport = :$pgport" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^segs_out:/) { split($i, a, ":"); s += a[2] } }
        END { print s + 0 }'
}
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$app_pid/stat"; }
uticks() { awk '{ sub(/^.*\) /, ""); print $12 }' "/proc/$app_pid/stat"; }
hz=$(getconf CLK_TCK)
ev=syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_setsockopt,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_writev,syscalls:sys_enter_read,raw_syscalls:sys_enter

echo "git: $(git -C "$repo" rev-parse --short HEAD) ($(git -C "$repo" status --porcelain | wc -l) changed files); app args: ${app_args:-none}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %9s %8s %8s %8s %8s %8s %8s %9s %8s %8s\n' test requests sendto recvfrom setsock epoll all segs_pg us_cpu us_user load1
for t in $tests; do
    taskset -c 1 wrk -t1 -c"$conns" -d2s "$(url_of "$t")" >/dev/null 2>&1 # warm-up
    s0=$(segs)
    c0=$(ticks)
    u0=$(uticks)
    if [ $use_strace = 1 ]; then
        strace -c -f -p "$app_pid" -o "$db_dir/strace.txt" &
    else
        perf stat -x, -e "$ev" -p "$app_pid" -o "$db_dir/perf.txt" &
    fi
    perf_pid=$!
    sleep 0.2
    taskset -c 1 wrk -t1 -c"$conns" -d"${dur}"s "$(url_of "$t")" >"$db_dir/wrk.txt" 2>&1
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    c1=$(ticks)
    u1=$(uticks)
    s1=$(segs)
    n=$(awk '/ requests in / { print $1 }' "$db_dir/wrk.txt")
    if [ $use_strace = 1 ]; then # the same columns from strace's table
        awk '$NF ~ /^(sendto|recvfrom|setsockopt|epoll_wait)$/ { printf "%s,,syscalls:sys_enter_%s\n", $4, $NF }
             $NF == "total" { printf "%s,,raw_syscalls:sys_enter\n", $4 }' \
            "$db_dir/strace.txt" >"$db_dir/perf.txt"
    fi
    awk -F, -v n="$n" -v t="$t" -v segs=$((s1 - s0)) -v cpu=$((c1 - c0)) -v ucpu=$((u1 - u0)) -v hz="$hz" \
        -v load="$(cut -d' ' -f1 /proc/loadavg)" '
        { c[$3] = $1 }
        END { printf "%-9s %9d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %9.2f %8.2f %8s\n", t, n,
              c["syscalls:sys_enter_sendto"] / n, c["syscalls:sys_enter_recvfrom"] / n,
              c["syscalls:sys_enter_setsockopt"] / n, c["syscalls:sys_enter_epoll_wait"] / n,
              c["raw_syscalls:sys_enter"] / n, segs / n, cpu * 1e6 / hz / n, ucpu * 1e6 / hz / n, load }' "$db_dir/perf.txt"
done
echo "(per request; segs_pg: TCP segments from the app to PostgreSQL; us_cpu: the app's utime+stime per request, perf attached; us_user: utime alone)"
