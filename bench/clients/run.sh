#!/usr/bin/env bash
# bench/clients/run.sh - the Redis and memcached clients against their C
# references, in one run, with ratios. Timed parts run under the bench lock
# (flock /tmp/hp-bench.lock), the server pinned to CPU 0, the client to CPU 1;
# callgrind counts (user-space instructions per operation) need no lock.
#
#   Redis: GET of a 16-byte value, one connection, pipeline depth 1 and 16:
#     bench_redis (hellepoll client, batches of DEPTH) vs
#     redis-benchmark -c 1 -P DEPTH -t get -d 16 (Debian redis-tools).
#   memcached: mg of a 100-byte value, one connection: bench_memcached with 64
#     concurrent callers vs libmemcached's blocking memcached_get() (same program).
#
#   bench/clients/run.sh [--rounds R] [--n N] [--no-build]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build="$repo/build/bench"
rounds=3
n=200000
cg_n=20000
do_build=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift ;;
    --n) n=$2; shift ;;
    --no-build) do_build=0 ;;
    *) echo "usage: $0 [--rounds R] [--n N] [--no-build]"; exit 2 ;;
    esac
    shift
done
if [ $do_build = 1 ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHP_BUILD_BENCH=ON \
        -DHP_BUILD_TESTS=OFF -DHP_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$build" -j2 --target bench_redis bench_memcached >/dev/null
fi
bin="$build/bench/clients"
tmp=$(mktemp -d /tmp/hp-bench-clients-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1)).close()" 2>/dev/null && return; sleep 0.05; done; echo "server on $1 did not start"; exit 1; }
# usage CMD...: run pinned to CPU 1, print "user_s wall_s" of the child (rusage), output to $tmp/out
timed() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
out = subprocess.run(["taskset", "-c", "1"] + sys.argv[1:], stdout=subprocess.PIPE, text=True, check=True).stdout
w = time.time() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
print(f"{u:.4f} {w:.4f}")
print(out, end="", file=sys.stderr)
PY
}
callgrind_ir() { # outfile: total Ir
    awk '/^totals:/ {print $2; exit}' "$1"
}

rport=$(free_port)
taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp" --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
disown $!
mport=$(free_port)
taskset -c 0 memcached -p "$mport" -l 127.0.0.1 -U 0 -t 1 -m 64 -u root >"$tmp/mc.log" 2>&1 &
pids+=($!)
disown $!
wait_port "$rport"
wait_port "$mport"
redis-cli -p "$rport" SET key:__rand_int__ 0123456789abcdef >/dev/null

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "## Redis GET, 16-byte value, one connection ($n commands, median of $rounds rounds)"
echo
echo "| depth | client | commands/s | client user ns/command | client instructions/command |"
echo "|---:|---|---:|---:|---:|"
declare -A res
for d in 1 16; do
    for r in $(seq "$rounds"); do
        # ours
        # user CPU of the whole process (rusage of the child), as for redis-benchmark
        line=$(flock /tmp/hp-bench.lock bash -c "$(declare -f timed); timed '$bin/bench_redis' $rport $d $n" 2>"$tmp/o")
        ops=$(grep -o 'ops_per_s=[0-9.]*' "$tmp/o" | cut -d= -f2)
        echo "$ops" >>"$tmp/hp_ops_$d"
        python3 -c "print($(echo "$line" | cut -d' ' -f1)*1e9/$n)" >>"$tmp/hp_uns_$d"
        # redis-benchmark (its user time covers its whole run)
        line=$(flock /tmp/hp-bench.lock bash -c "$(declare -f timed); timed redis-benchmark -h 127.0.0.1 -p $rport -c 1 -n $n -P $d -d 16 -t get -q" 2>"$tmp/o")
        u=$(echo "$line" | cut -d' ' -f1)
        ops=$(grep -o '[0-9.]* requests per second' "$tmp/o" | head -1 | cut -d' ' -f1)
        echo "$ops" >>"$tmp/rb_ops_$d"
        python3 -c "print($u*1e9/$n)" >>"$tmp/rb_uns_$d"
    done
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.hp.$d" \
        "$bin/bench_redis" "$rport" "$d" "$cg_n" >/dev/null 2>&1
    hp_ir=$(python3 -c "print(round($(callgrind_ir "$tmp/cg.hp.$d")/$cg_n))")
    # redis-benchmark cannot switch callgrind on for its measured phase only: count a
    # run of cg_n and one of 5 * cg_n commands; the difference is its steady state.
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.rb.$d" \
        redis-benchmark -h 127.0.0.1 -p "$rport" -c 1 -n "$cg_n" -P "$d" -d 16 -t get -q >/dev/null 2>&1
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.rb5.$d" \
        redis-benchmark -h 127.0.0.1 -p "$rport" -c 1 -n "$((5 * cg_n))" -P "$d" -d 16 -t get -q >/dev/null 2>&1
    rb_ir=$(python3 -c "print(round($(callgrind_ir "$tmp/cg.rb.$d")/$cg_n))")
    rb_ss=$(python3 -c "print(round(($(callgrind_ir "$tmp/cg.rb5.$d")-$(callgrind_ir "$tmp/cg.rb.$d"))/(4*$cg_n)))")
    hp_ops=$(median <"$tmp/hp_ops_$d"); hp_uns=$(median <"$tmp/hp_uns_$d")
    rb_ops=$(median <"$tmp/rb_ops_$d"); rb_uns=$(median <"$tmp/rb_uns_$d")
    printf '| %s | hellepoll redis client | %.0f | %.0f | %s |\n' "$d" "$hp_ops" "$hp_uns" "$hp_ir"
    printf '| %s | redis-benchmark -P %s | %.0f | %.0f | %s steady state (%s whole run) |\n' "$d" "$d" "$rb_ops" "$rb_uns" "$rb_ss" "$rb_ir"
    if [ "$d" = 16 ]; then
        for r in $(seq "$rounds"); do
            line=$(flock /tmp/hp-bench.lock bash -c "$(declare -f timed); timed '$bin/bench_redis' $rport $d $n window" 2>"$tmp/o")
            grep -o 'ops_per_s=[0-9.]*' "$tmp/o" | cut -d= -f2 >>"$tmp/hpw_ops"
            python3 -c "print($(echo "$line" | cut -d' ' -f1)*1e9/$n)" >>"$tmp/hpw_uns"
        done
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.hpw" \
            "$bin/bench_redis" "$rport" "$d" "$cg_n" window >/dev/null 2>&1
        hpw_ir=$(python3 -c "print(round($(callgrind_ir "$tmp/cg.hpw")/$cg_n))")
        hpw_ops=$(median <"$tmp/hpw_ops"); hpw_uns=$(median <"$tmp/hpw_uns")
        printf '| 16 | hellepoll, 16 callers (sliding window) | %.0f | %.0f | %s |\n' "$hpw_ops" "$hpw_uns" "$hpw_ir"
        res[ratio_ops_w]=$(python3 -c "print(f'{$hpw_ops/$rb_ops:.2f}')")
    fi
    res[ratio_cpu_$d]=$(python3 -c "print(f'{$hp_uns/$rb_uns:.2f}')")
    res[ratio_ops_$d]=$(python3 -c "print(f'{$hp_ops/$rb_ops:.2f}')")
    res[ratio_ir_$d]=$(python3 -c "print(f'{$hp_ir/$rb_ss:.2f} of its steady state, {$hp_ir/$rb_ir:.2f} of its whole run')")
done
echo
for d in 1 16; do
    echo "- depth $d: user CPU per command hellepoll/redis-benchmark = ${res[ratio_cpu_$d]}" \
        "(target <= 1); instructions ${res[ratio_ir_$d]}; throughput ratio ${res[ratio_ops_$d]}"
done
echo "- depth 16 throughput hellepoll/redis-benchmark -P 16 = ${res[ratio_ops_16]} in the same batches," \
    "${res[ratio_ops_w]} with 16 callers keeping 16 in flight (target >= 1)"
echo

mn=$((n / 2))
echo "## memcached mg, 100-byte value, one connection ($mn gets, median of $rounds rounds)"
echo
echo "| client | gets/s | client user ns/get | client instructions/get |"
echo "|---|---:|---:|---:|"
for r in $(seq "$rounds"); do
    # the same program for both: user CPU of the whole process (rusage of the child)
    line=$(flock /tmp/hp-bench.lock bash -c "$(declare -f timed); timed '$bin/bench_memcached' $mport 64 $mn hp" 2>"$tmp/o")
    grep -o 'ops_per_s=[0-9.]*' "$tmp/o" | cut -d= -f2 >>"$tmp/mhp_ops"
    python3 -c "print($(echo "$line" | cut -d' ' -f1)*1e9/$mn)" >>"$tmp/mhp_uns"
    line=$(flock /tmp/hp-bench.lock bash -c "$(declare -f timed); timed '$bin/bench_memcached' $mport 1 $mn libmemcached" 2>"$tmp/o")
    grep -o 'ops_per_s=[0-9.]*' "$tmp/o" | cut -d= -f2 >>"$tmp/mlm_ops"
    python3 -c "print($(echo "$line" | cut -d' ' -f1)*1e9/$mn)" >>"$tmp/mlm_uns"
done
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.mhp" \
    "$bin/bench_memcached" "$mport" 64 "$cg_n" hp >/dev/null 2>&1
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.mlm" \
    "$bin/bench_memcached" "$mport" 1 "$cg_n" libmemcached >/dev/null 2>&1
mhp_ir=$(python3 -c "print(round($(callgrind_ir "$tmp/cg.mhp")/$cg_n))")
mlm_ir=$(python3 -c "print(round($(callgrind_ir "$tmp/cg.mlm")/$cg_n))")
mhp_ops=$(median <"$tmp/mhp_ops"); mhp_uns=$(median <"$tmp/mhp_uns")
mlm_ops=$(median <"$tmp/mlm_ops"); mlm_uns=$(median <"$tmp/mlm_uns")
printf '| hellepoll memcached client, 64 callers | %.0f | %.0f | %s |\n' "$mhp_ops" "$mhp_uns" "$mhp_ir"
printf '| libmemcached memcached_get (blocking) | %.0f | %.0f | %s |\n' "$mlm_ops" "$mlm_uns" "$mlm_ir"
echo
echo "- instructions per get hellepoll/libmemcached = $(python3 -c "print(f'{$mhp_ir/$mlm_ir:.2f}')") (target <= 0.5)"
echo "- gets per second hellepoll/libmemcached = $(python3 -c "print(f'{$mhp_ops/$mlm_ops:.2f}')") (target >= 5)"
