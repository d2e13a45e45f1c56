#!/usr/bin/env bash
# bench/pg/run.sh - the pg module against pgbench, in the same run, on a
# throw-away PostgreSQL 15 (tests/support/pgtmp.sh) with a TechEmpower-style
# "world" table of 10,000 rows.
#
# Workload: SELECT randomnumber FROM world WHERE id = $1 (random id), over ONE
# connection. Ours: 64 concurrent callers on one pooled connection, pipelined
# (bench/pg/hp_pg_bench.c), once with the module's own protocol code (the
# default) and once with every query through libpq (-L, opts.libpq_io, as on
# TLS connections). Peer: pgbench -M prepared -c 1 with the same query
# as a custom script (waits for each answer before sending the next).
# The server is pinned to one CPU, the clients to the other; the timed part
# runs under flock /tmp/hp-bench.lock. Reports queries per second (median of
# the rounds) and client CPU per query, then client user-space instructions
# per query under callgrind (not timed, outside the lock): ours counts only
# the measured phase; pgbench's is the difference of two runs (-t N2 - N1).
#
#   bench/pg/run.sh [--rounds R] [--duration S] [--callers C] [--cg-n "N1 N2"]
#                   [--no-build] [--no-lock] [--build-dir DIR] [--out DIR]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=3
dur=5
callers=64
cg_n="5000 20000"
build_dir=$repo/build-bench-pg
out=$repo/bench/results/pg-$(date -u +%Y%m%d-%H%M%S)
do_build=1
use_lock=1
lock=/tmp/hp-bench.lock
server_cpu=1
client_cpu=0

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift ;;
    --duration) dur=$2; shift ;;
    --callers) callers=$2; shift ;;
    --cg-n) cg_n=$2; shift ;;
    --no-build) do_build=0 ;;
    --no-lock) use_lock=0 ;;
    --build-dir) build_dir=$2; shift ;;
    --out) out=$2; shift ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
    shift
done
[ "$(nproc)" -ge 2 ] || { server_cpu=0; client_cpu=0; echo "note: one CPU, nothing pinned apart"; }
pgtmp=$repo/tests/support/pgtmp.sh
"$pgtmp" bin >/dev/null || { echo "PostgreSQL server binaries missing"; exit 1; }
[ -x "$("$pgtmp" bin)/pgbench" ] || { echo "pgbench missing (Debian: postgresql-15)"; exit 1; }
mkdir -p "$out"

if [ $do_build = 1 ]; then
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHP_BUILD_BENCH=ON \
        -DHP_BUILD_TESTS=OFF -DHP_BUILD_EXAMPLES=OFF >"$out/configure.log"
    cmake --build "$build_dir" -j2 --target bench_pg_hp >"$out/build.log"
fi
hp=$build_dir/bench/pg/bench_pg_hp

tmp=$(mktemp -d /tmp/hp-pgbench-XXXXXX)
cleanup() { "$pgtmp" stop "$tmp" || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$pgtmp" init "$tmp"
line=$(taskset -c $server_cpu "$pgtmp" start "$tmp")
port=$(echo "$line" | sed 's/.*PORT=\([0-9]*\).*/\1/')
pm=$(echo "$line" | sed 's/.*PID=\([0-9]*\).*/\1/')
"$pgtmp" psql "$tmp" -c "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL)" \
    -c "INSERT INTO world SELECT i, 1 + (random() * 9999)::int FROM generate_series(1, 10000) i" \
    -c "VACUUM ANALYZE world"
ci="host=127.0.0.1 port=$port user=postgres dbname=postgres"
script=$tmp/select.sql
printf '\\set id random(1, 10000)\nSELECT randomnumber FROM world WHERE id = :id;\n' >"$script"
pgb=("$("$pgtmp" bin)/pgbench" -n -M prepared -c 1 -j 1 -f "$script" -h 127.0.0.1 -p "$port" -U postgres postgres)

{
    echo "date: $(date -u)"
    echo "server: $("$pgtmp" psql "$tmp" -At -c 'select version()')"
    echo "pgbench: $("${pgb[0]}" --version)"
    echo "cpus: server on $server_cpu, clients on $client_cpu; $(nproc) online"
} | tee "$out/env.txt"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# Server CPU: the postmaster's own time plus that of its reaped children (each
# client's backend exits and is reaped after the run), in clock ticks.
tck=$(getconf CLK_TCK)
srv_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"; }
backends() { ps --ppid "$pm" --no-headers | wc -l; }
base_children=0
settle() { # wait (at most 5 s) until the run's backend has exited and been reaped
    for _ in $(seq 1 100); do [ "$(backends)" -le "$base_children" ] && return; sleep 0.05; done
}
server_cpu() { # ticks before, queries: server CPU microseconds per query
    awk -v a="$1" -v b="$(srv_ticks)" -v n="$2" -v t="$tck" 'BEGIN {printf "%.2f\n", (b - a) * 1e6 / t / n}'
}

timed() {
    for f in hp hpl pgbench; do : >"$out/$f.qps"; : >"$out/$f.cpu"; : >"$out/$f.srv"; done
    base_children=$(backends)
    for r in $(seq 1 "$rounds"); do
        for v in hp hpl; do # the module's own protocol code, then libpq
            t0=$(srv_ticks)
            taskset -c $client_cpu "$hp" -c "$ci" -n "$callers" -d "$dur" $([ $v = hpl ] && echo -L) |
                tee -a "$out/$v.log"
            settle
            server_cpu "$t0" "$(tail -1 "$out/$v.log" | sed 's/.* queries=\([0-9]*\).*/\1/')" >>"$out/$v.srv"
            tail -1 "$out/$v.log" | sed 's/.* qps=\([0-9.]*\).*/\1/' >>"$out/$v.qps"
            tail -1 "$out/$v.log" | sed 's/.*client_cpu_us_per_query=\([0-9.]*\).*/\1/' >>"$out/$v.cpu"
        done
        t0=$(srv_ticks)
        /usr/bin/time -f "pgbench_cpu_s=%U+%S" taskset -c $client_cpu "${pgb[@]}" -T "$dur" \
            >"$out/pgbench.$r.log" 2>&1
        settle
        server_cpu "$t0" "$(awk '/actually processed/ {print $NF}' "$out/pgbench.$r.log")" >>"$out/pgbench.srv"
        grep -E "^tps|number of transactions actually|pgbench_cpu" "$out/pgbench.$r.log" | tee -a "$out/pgbench.log"
        grep -E "^tps" "$out/pgbench.$r.log" | sed 's/tps = \([0-9.]*\).*/\1/' >>"$out/pgbench.qps"
        awk '/actually processed/ {n = $NF} /pgbench_cpu_s=/ {split(substr($0, 15), t, "+"); c = t[1] + t[2]}
             END {printf "%.2f\n", c * 1e6 / n}' "$out/pgbench.$r.log" >>"$out/pgbench.cpu"
    done
}
if [ $use_lock = 1 ]; then
    exec 9>"$lock"
    echo "waiting for $lock ..."
    flock 9
    timed
    flock -u 9
else
    timed
fi

hpl_qps=$(median <"$out/hpl.qps")
hpl_cpu=$(median <"$out/hpl.cpu")
hpl_srv=$(median <"$out/hpl.srv")
hp_qps=$(median <"$out/hp.qps")
pg_qps=$(median <"$out/pgbench.qps")
hp_cpu=$(median <"$out/hp.cpu")
pg_cpu=$(median <"$out/pgbench.cpu")
hp_srv=$(median <"$out/hp.srv")
pg_srv=$(median <"$out/pgbench.srv")

# Client instructions per query (callgrind; not timed).
set -- $cg_n
n1=$1 n2=$2
cg() { # out-file, command...: total Ir; the command's stdout goes to out-file.stdout
    valgrind --tool=callgrind --callgrind-out-file="$1" "${@:2}" >"$1.stdout" 2>"$1.stderr" || true
    grep -E '^totals:' "$1" | head -1 | awk '{print $2}'
}
hp_ir=$(cg "$out/cg.hp" --instr-atstart=no "$hp" -c "$ci" -n "$callers" -q "$n2")
hp_n=$(sed 's/.* queries=\([0-9]*\).*/\1/' "$out/cg.hp.stdout")
hpl_ir=$(cg "$out/cg.hpl" --instr-atstart=no "$hp" -c "$ci" -n "$callers" -q "$n2" -L)
hpl_n=$(sed 's/.* queries=\([0-9]*\).*/\1/' "$out/cg.hpl.stdout")
pg_ir1=$(cg "$out/cg.pg1" "${pgb[@]}" -t "$n1")
pg_ir2=$(cg "$out/cg.pg2" "${pgb[@]}" -t "$n2")

python3 - "$hp_qps" "$pg_qps" "$hp_cpu" "$pg_cpu" "$hp_srv" "$pg_srv" "$hpl_qps" "$hpl_cpu" "$hpl_srv" \
    "$hp_ir" "$hp_n" "$pg_ir1" "$pg_ir2" "$n1" "$n2" "$callers" "$hpl_ir" "$hpl_n" <<'PY' | tee "$out/results.md"
import sys
hp_qps, pg_qps, hp_cpu, pg_cpu, hp_srv, pg_srv, l_qps, l_cpu, l_srv = (float(x) for x in sys.argv[1:10])
hp_ir, hp_n, pg1, pg2, n1, n2, c, l_ir, l_n = (int(x) for x in sys.argv[10:19])
hp_ipq = hp_ir / hp_n
l_ipq = l_ir / l_n
pg_ipq = (pg2 - pg1) / (n2 - n1)
print(f"| one connection, SELECT randomnumber FROM world WHERE id = $1 | hellepoll pg ({c} callers, pipelined) | the same through libpq (libpq_io) | pgbench -M prepared -c 1 | ratio to pgbench | ratio to libpq_io |")
print("|---|---:|---:|---:|---:|---:|")
print(f"| queries per second (median) | {hp_qps:,.0f} | {l_qps:,.0f} | {pg_qps:,.0f} | {hp_qps / pg_qps:.2f}x | {hp_qps / l_qps:.2f}x |")
print(f"| client user-space instructions per query (callgrind) | {hp_ipq:,.0f} | {l_ipq:,.0f} | {pg_ipq:,.0f} | {hp_ipq / pg_ipq:.2f} | {hp_ipq / l_ipq:.2f} |")
print(f"| client CPU per query (user+sys, median) | {hp_cpu:.2f} us | {l_cpu:.2f} us | {pg_cpu:.2f} us | {hp_cpu / pg_cpu:.2f} | {hp_cpu / l_cpu:.2f} |")
print(f"| server CPU per query (postmaster + backend, median) | {hp_srv:.2f} us | {l_srv:.2f} us | {pg_srv:.2f} us | {hp_srv / pg_srv:.2f} | {hp_srv / l_srv:.2f} |")
print(f"| server CPU busy (server CPU per query x queries per second) | {hp_srv * hp_qps / 1e4:.0f} % | {l_srv * l_qps / 1e4:.0f} % | {pg_srv * pg_qps / 1e4:.0f} % | | |")
PY
echo "results in $out"
