#!/usr/bin/env bash
# bench/static/run.sh - examples/static against nginx (nginx-light, one
# process, sendfile on, open_file_cache on, etag on) serving the same
# directory, in the same run. Servers are pinned to CPU 0, wrk/ab to CPU 1,
# one server at a time, under /tmp/hp-bench.lock (the timed part).
#
# Workloads (wrk -t1, keep-alive): -c100 GET of a 1 KiB, a 64 KiB and a
# 1 MiB file, and 16 pipelined GETs of the 1 KiB file on 100 connections.
# For each: req/s and the server's CPU time (utime+stime of all its threads
# from /proc/PID/stat), giving requests per server-CPU-second and the ratio
# ours/nginx (median of the rounds). Then, not timed: user-space
# instructions per keep-alive 1 KiB request (callgrind, difference of two
# runs of N1 and N2 requests over 10 connections) and system calls per
# cached 1 KiB request (strace -c -f over N keep-alive requests).
#
#   bench/static/run.sh [--rounds N] [--duration S] [--only "wrk cg strace"] [--no-build]
#                       [--workloads "k1 k64 m1 pipe"] [--servers "ours nginx"]
#                       [--static-args "extra options for examples/static"]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=3
dur=5
only="wrk cg strace"
build_dir=/tmp/build-staticbench
do_build=1
host=127.0.0.1
port_ours=18180
port_ngx=18181
server_cpu=0
client_cpu=1
cg_n1=5000
cg_n2=20000
st_n=20000
lock=/tmp/hp-bench.lock
wl="k1 k64 m1 pipe"
servers="ours nginx"
static_args=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift ;;
    --duration) dur=$2; shift ;;
    --only) only=$2; shift ;;
    --workloads) wl=$2; shift ;;
    --servers) servers=$2; shift ;;
    --static-args) static_args=$2; shift ;;
    --build-dir) build_dir=$2; shift ;;
    --no-build) do_build=0 ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
    shift
done
has() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }
for tool in nginx wrk ab valgrind strace taskset curl cmake flock python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

out=$repo/bench/results/static-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/raw"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$out/run.log" >&2; }

if [ "$do_build" = 1 ]; then
    log "building Release in $build_dir"
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHP_BUILD_TESTS=OFF >"$out/raw/build.log" 2>&1
    cmake --build "$build_dir" -j2 --target static >>"$out/raw/build.log" 2>&1 || { tail -20 "$out/raw/build.log"; exit 1; }
fi
ours_bin=$build_dir/examples/static/static
ulimit -n "$(ulimit -Hn)"

# The served directory: the same files for both servers.
www=$(mktemp -d /tmp/staticbench-www.XXXXXX)
ngx_dir=$(mktemp -d /tmp/staticbench-nginx.XXXXXX)
head -c 1024 /dev/urandom >"$www/1k.bin"
head -c 65536 /dev/urandom >"$www/64k.bin"
head -c 1048576 /dev/urandom >"$www/1m.bin"
sed -e "s|@DIR@|$ngx_dir|g" -e "s|@ROOT@|$www|g" -e "s|@HOST@|$host|g" -e "s|@PORT@|$port_ngx|g" \
    "$here/nginx.conf.in" >"$ngx_dir/nginx.conf"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$www" "$ngx_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
    echo "date: $(date -Is)"
    echo "git: $(git -C "$repo" rev-parse --short HEAD) ($(git -C "$repo" status --porcelain | wc -l) changed files)"
    echo "kernel: $(uname -r); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
    echo "nginx: $(nginx -v 2>&1); wrk: $(wrk --version 2>&1 | head -1)"
    echo "rounds: $rounds, duration: $dur s"
} >"$out/meta.txt"

port_of() { [ "$1" = ours ] && echo $port_ours || echo $port_ngx; }
server_cmd() {
    case "$1" in
    ours) echo "$ours_bin --root $www --host $host --port $port_ours --max-connections 20000 --max-keepalive-requests 4294967295 $static_args" ;;
    nginx) echo "nginx -p $ngx_dir -e $ngx_dir/error.log -c $ngx_dir/nginx.conf" ;;
    esac
}
start_server() { # NAME LOG [WRAPPER...]
    local name=$1 logf=$2 i
    shift 2
    # shellcheck disable=SC2046
    taskset -c $server_cpu "$@" $(server_cmd "$name") >"$logf" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    for ((i = 0; i < 600; i++)); do
        curl -s -o /dev/null -m 1 "http://$host:$(port_of "$name")/1k.bin" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    log "$name did not start"; tail -5 "$logf" >&2; exit 1
}
stop_server() {
    local i
    kill -TERM "$server_pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}
tree() { local p c; for p in "$@"; do echo "$p"; for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done; done; }
cpu_ticks() { # all threads of the process tree: utime + stime
    local p sum=0 t
    for p in $(tree "$1"); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat 2>/dev/null || echo 0)
        sum=$((sum + ${t:-0}))
    done
    echo $sum
}
hz=$(getconf CLK_TCK)

load_cmd() { # WORKLOAD PORT
    case "$1" in
    k1) echo "wrk -t1 -c100 -d${dur}s --timeout 5s http://$host:$2/1k.bin" ;;
    k64) echo "wrk -t1 -c100 -d${dur}s --timeout 5s http://$host:$2/64k.bin" ;;
    m1) echo "wrk -t1 -c100 -d${dur}s --timeout 5s http://$host:$2/1m.bin" ;;
    pipe) echo "wrk -t1 -c100 -d${dur}s --timeout 5s -s $here/pipeline.lua http://$host:$2/" ;;
    esac
}

# ---- timed: wrk, under the lock ---------------------------------------------
if has wrk; then
    exec 9>"$lock"
    log "waiting for $lock"
    flock 9
    printf 'round\tserver\tworkload\trequests\terrors\treq_s\tserver_cpu_s\treq_per_cpu_s\n' >"$out/wrk.tsv"
    for ((r = 1; r <= rounds; r++)); do
        for s in $servers; do
            start_server $s "$out/raw/server.$s.$r.log"
            for w in $wl; do
                raw=$out/raw/wrk.$s.$w.$r.txt
                t0=$(cpu_ticks "$server_pid")
                # shellcheck disable=SC2046
                taskset -c $client_cpu $(load_cmd $w "$(port_of $s)") >"$raw" 2>&1 || true
                t1=$(cpu_ticks "$server_pid")
                n=$(awk '/ requests in / { print $1 }' "$raw")
                e=$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } /Non-2xx/ { e += $5 } END { print e + 0 }' "$raw")
                q=$(awk '/^Requests\/sec:/ { print $2 }' "$raw")
                cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
                per=$(awk -v n="${n:-0}" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $r $s $w "${n:-0}" "$e" "${q:-0}" "$cpu" "$per" >>"$out/wrk.tsv"
                log "round $r $s $w: ${q:-0} req/s, $cpu s server CPU, $per req per CPU-s, $e errors (loadavg $(cut -d' ' -f1 /proc/loadavg))"
            done
            stop_server
        done
    done
    flock -u 9
    python3 - "$out/wrk.tsv" >"$out/wrk-summary.txt" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
names = {"k1": "1 KiB keep-alive", "k64": "64 KiB keep-alive", "m1": "1 MiB keep-alive", "pipe": "1 KiB x16 pipelined"}
print("| workload | ours req/s | nginx req/s | ours req/CPU-s | nginx req/CPU-s | ratio per CPU-s |")
print("|---|---|---|---|---|---|")
for w in ["k1", "k64", "m1", "pipe"]:
    m = {}
    for s in ["ours", "nginx"]:
        rs = [r for r in rows if r["server"] == s and r["workload"] == w]
        if not rs:
            m[s] = (0, 0)
            continue
        m[s] = (statistics.median(float(r["req_s"]) for r in rs), statistics.median(float(r["req_per_cpu_s"]) for r in rs))
    if not m["ours"][1]:
        continue
    print("| %s | %.0f | %.0f | %.0f | %.0f | %.2f |" % (names[w], m["ours"][0], m["nginx"][0], m["ours"][1], m["nginx"][1],
                                                     m["ours"][1] / m["nginx"][1] if m["nginx"][1] else 0))
PY
    cat "$out/wrk-summary.txt"
fi

# ---- not timed: callgrind instructions per 1 KiB keep-alive request ----------
if has cg; then
    printf 'server\tn\tinstructions\tcompleted\n' >"$out/callgrind.tsv"
    for s in ours nginx; do
        for n in $cg_n1 $cg_n2; do
            f=$out/raw/callgrind.$s.$n.out
            start_server $s "$out/raw/server.cg.$s.$n.log" valgrind --tool=callgrind --callgrind-out-file="$f"
            taskset -c $client_cpu timeout 300 ab -q -k -c 10 -n $n "http://$host:$(port_of $s)/1k.bin" >"$f.ab.txt" 2>&1 || true
            stop_server
            printf '%s\t%s\t%s\t%s\n' $s $n "$(awk '/^(summary|totals):/ { print $2; exit }' "$f")" \
                "$(awk '/^Complete requests:/ { print $3 }' "$f.ab.txt")" >>"$out/callgrind.tsv"
        done
        callgrind_annotate "$f" 2>/dev/null | head -60 >"$out/raw/callgrind.$s.annotate.txt" || true
    done
    awk -F'\t' 'NR > 1 { i[$1, $2] = $3; c[$1, $2] = $4; s[$1] = 1 }
        END { for (x in s) { d = (i[x, n2] - i[x, n1]) / (c[x, n2] - c[x, n1]);
                             printf "%s: %.0f instructions per 1 KiB keep-alive request\n", x, d; v[x] = d }
              if (v["nginx"]) printf "ours/nginx: %.3f\n", v["ours"] / v["nginx"] }' \
        n1=$cg_n1 n2=$cg_n2 "$out/callgrind.tsv" | tee "$out/callgrind-summary.txt"
fi

# ---- not timed: system calls per cached 1 KiB request ----------------------------
if has strace; then
    for s in ours nginx; do
        f=$out/raw/strace.$s.txt
        start_server $s "$out/raw/server.strace.$s.log" strace -c -f -o "$f"
        # Warm the cache, then the counted requests.
        curl -s -o /dev/null "http://$host:$(port_of $s)/1k.bin"
        taskset -c $client_cpu timeout 120 ab -q -k -c 10 -n $st_n "http://$host:$(port_of $s)/1k.bin" >"$f.ab" 2>&1 || true
        child=$(cat /proc/"$server_pid"/task/*/children 2>/dev/null | awk '{ print $1 }')
        [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
        stop_server
        {
            echo "== $s: system calls per request over $st_n keep-alive 1 KiB requests (strace -c -f)"
            awk -v n=$st_n '$1 ~ /^[0-9.]+$/ && NF >= 5 { name = $NF; calls = $4; if (calls ~ /^[0-9]+$/) printf "  %-16s %8.3f\n", name, calls / n }' "$f"
        } | tee -a "$out/strace-summary.txt"
    done
fi
log "results in $out"
