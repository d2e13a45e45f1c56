#!/usr/bin/env bash
# bench/json/run.sh - the JSON writer (json.h) against jansson and cJSON on
# TechEmpower's two documents: {"message":"Hello, World!"} and a 20-element
# array of {"id":N,"randomNumber":M}. Prints user-space instructions per
# document (callgrind, only the serialising loop instrumented) and ns per
# document (pinned to CPU 0, under /tmp/hp-bench.lock), with each peer's
# ratio to hellepoll.
#
#   bench/json/run.sh [--build-dir DIR] [--no-build] [--no-time] [-n N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$repo/build/bench-json
n=20000
do_build=1
do_time=1
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --no-time) do_time=0; shift ;;
    -n) n=$2; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR] [--no-build] [--no-time] [-n N]" >&2; exit 2 ;;
    esac
done
if [ $do_build = 1 ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHP_BUILD_BENCH=ON \
        -DHP_BUILD_TESTS=OFF -DHP_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$build" -j2 --target bench_json >/dev/null
fi
bin=$build/bench/json/bench_json
impls="hp hp-fixed"
for peer in jansson cjson; do
    if "$bin" "$peer" message 1 >/dev/null 2>&1; then impls="$impls $peer"; else echo "($peer not built: skipped)"; fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

instr() { # impl doc -> instructions per document
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" \
        "$bin" "$1" "$2" "$n" --callgrind >/dev/null 2>"$tmp/vg.err"
    local ir
    ir=$(grep -E '^summary:|^totals:' "$tmp/cg.out" | tail -1 | awk '{print $2}')
    awk -v ir="$ir" -v n="$n" 'BEGIN { printf "%.0f", ir / n }'
}

nsper() { # impl doc -> ns per document (best of 3)
    local best="" t
    for _ in 1 2 3; do
        t=$(flock /tmp/hp-bench.lock taskset -c 0 "$bin" "$1" "$2" $((n * 10)) | sed 's/.*ns_per_doc=//')
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
    echo "$best"
}

printf '%-10s %-8s %14s %8s' impl doc instr/doc ratio
[ $do_time = 1 ] && printf ' %10s %8s' ns/doc ratio
echo
for doc in message db20; do
    base_i="" base_t=""
    for impl in $impls; do
        i=$(instr "$impl" "$doc")
        [ -z "$base_i" ] && base_i=$i
        printf '%-10s %-8s %14s %8s' "$impl" "$doc" "$i" "$(awk -v a="$i" -v b="$base_i" 'BEGIN { printf "%.2f", a / b }')"
        if [ $do_time = 1 ]; then
            t=$(nsper "$impl" "$doc")
            [ -z "$base_t" ] && base_t=$t
            printf ' %10s %8s' "$t" "$(awk -v a="$t" -v b="$base_t" 'BEGIN { printf "%.2f", a / b }')"
        fi
        echo
    done
done
