#!/usr/bin/env bash
# bench/mustache/run.sh - the Mustache engine's workloads (bench.c) on
# hellepoll (AVX2 dispatch as shipped, kept to SSSE3 and to SSE2) and on the peer
# kainjow/mustache (C++, Debian libkainjow-mustache-dev; skipped if
# missing): user-space instructions per render under callgrind (exact, any
# time) and wall-clock ns per render (pinned, under the machine's bench lock),
# printed as a markdown table with hellepoll/peer ratios.
#
#   bench/mustache/run.sh [--no-time] [--cpu C] [--rounds R] [--build-dir DIR]
#
# Targets (issue 11): bigtable <= 400,000 instructions per render, fortunes
# <= 15,000, escape <= 0.5 instructions per input byte (escape-plain, prose
# without specials, has no target: it shows what text costs).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir="$repo/build/bench-mustache"
cpu=1
rounds=5
do_time=1
while [ $# -gt 0 ]; do
    case "$1" in
    --no-time) do_time=0 ;;
    --cpu) cpu="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --build-dir) build_dir="$2"; shift ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
    shift
done

echo "=== build ($build_dir, Release -O2 -g)" >&2
cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-O2 -g" \
    -DHP_BUILD_BENCH=ON -DHP_BUILD_TESTS=OFF -DHP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" -j2 --target bench_mustache bench_mustache_ssse3 bench_mustache_sse2 >/dev/null
progs=("hp:$build_dir/bench/mustache/bench_mustache" "hp-ssse3:$build_dir/bench/mustache/bench_mustache_ssse3"
    "hp-sse2:$build_dir/bench/mustache/bench_mustache_sse2")
if [ -f /usr/include/kainjow/mustache.hpp ] && command -v g++ >/dev/null; then
    g++ -O2 -g -std=c++11 -o "$build_dir/bench/mustache/bench_mustache_kainjow" "$here/peer_kainjow.cpp"
    progs+=("kainjow:$build_dir/bench/mustache/bench_mustache_kainjow")
else
    echo "peer kainjow/mustache not found (apt-get install libkainjow-mustache-dev g++): skipped" >&2
fi
workloads="bigtable fortunes escape escape-plain"
declare -A cg_n=([bigtable]=20 [fortunes]=2000 [escape]=50 [escape-plain]=50)
declare -A t_n=([bigtable]=2000 [fortunes]=200000 [escape]=5000 [escape-plain]=5000)
declare -A ins ns

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in "${progs[@]}"; do
    name=${p%%:*}; bin=${p#*:}
    for w in $workloads; do
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" \
            "$bin" "$w" "${cg_n[$w]}" >/dev/null 2>&1
        total=$(awk '/^totals:/ {print $2}' "$tmp/cg.out")
        ins[$name.$w]=$(awk -v t="$total" -v n="${cg_n[$w]}" 'BEGIN {printf "%.0f", t / n}')
    done
done
if [ $do_time = 1 ]; then
    pin=()
    [ "$cpu" -ge 0 ] && command -v taskset >/dev/null && pin=(taskset -c "$cpu")
    for w in $workloads; do
        for p in "${progs[@]}"; do
            name=${p%%:*}; bin=${p#*:}
            : >"$tmp/ns.$name.$w"
        done
        # rounds alternate between the programs so drift hits all of them alike
        for r in $(seq "$rounds"); do
            for p in "${progs[@]}"; do
                name=${p%%:*}; bin=${p#*:}
                flock /tmp/hp-bench.lock "${pin[@]}" "$bin" "$w" "${t_n[$w]}" |
                    sed -n 's/.*ns_per_render=\([0-9.]*\).*/\1/p' >>"$tmp/ns.$name.$w"
            done
        done
        for p in "${progs[@]}"; do
            name=${p%%:*}
            ns[$name.$w]=$(sort -n "$tmp/ns.$name.$w" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        done
    done
fi

echo
echo "| workload | target | hp instr | hp-ssse3 instr | hp-sse2 instr | kainjow instr | hp/kainjow instr | hp ns | hp-ssse3 ns | hp-sse2 ns | kainjow ns | hp/kainjow ns |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for w in $workloads; do
    case $w in
    bigtable) target="400,000/render" ;;
    fortunes) target="15,000/render" ;;
    escape) target="0.5/byte" ;;
    escape-plain) target="-" ;;
    esac
    row="| $w | $target"
    for name in hp hp-ssse3 hp-sse2 kainjow; do
        v=${ins[$name.$w]:-}
        if [ -n "$v" ] && [ "${w%-plain}" = escape ]; then
            v="$v ($(awk -v v="$v" 'BEGIN {printf "%.3f", v / 65536}')/byte)"
        fi
        row="$row | ${v:--}"
    done
    k=${ins[kainjow.$w]:-}
    row="$row | $([ -n "$k" ] && awk -v a="${ins[hp.$w]}" -v b="$k" 'BEGIN {printf "%.3f", a / b}' || echo -)"
    for name in hp hp-ssse3 hp-sse2 kainjow; do
        row="$row | ${ns[$name.$w]:--}"
    done
    k=${ns[kainjow.$w]:-}
    row="$row | $([ -n "$k" ] && [ -n "${ns[hp.$w]:-}" ] && awk -v a="${ns[hp.$w]}" -v b="$k" 'BEGIN {printf "%.3f", a / b}' || echo -) |"
    echo "$row"
done
