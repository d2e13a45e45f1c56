#!/usr/bin/env bash
# bench/mustache/run-reply.sh - what serving the fortunes page over HTTP
# costs, in callgrind user-space instructions per keep-alive request
# (bench/http/cg-per-request.sh; exact, no lock needed), three ways
# (bench/mustache/page_server.c):
#   reply   hp_mustache_reply()
#   copy    hp_mustache_render() into the caller's buffer + hp_http_reply()
#   static  hp_http_reply() of a page rendered once
# reply - copy is the glue's own cost, copy - static the render's.
#
#   bench/mustache/run-reply.sh [--n "N1 N2"] [--build-dir DIR]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir="$repo/build/bench-mustache-reply"
ns="5000 15000"
while [ $# -gt 0 ]; do
    case "$1" in
    --n) ns="$2"; shift ;;
    --build-dir) build_dir="$2"; shift ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
    shift
done
echo "=== build ($build_dir, Release -O2 -g)" >&2
cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-O2 -g" \
    -DHP_BUILD_BENCH=ON -DHP_BUILD_TESTS=OFF -DHP_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build_dir" -j2 --target bench_mustache_page_server >/dev/null
bin="$build_dir/bench/mustache/bench_mustache_page_server"
declare -A ins
for m in reply copy static; do
    ins[$m]=$("$repo/bench/http/cg-per-request.sh" --n "$ns" "$bin" --mode "$m" | awk '{print $1}')
done
echo
echo "| mode | instructions/request | minus static |"
echo "|---|---:|---:|"
for m in reply copy static; do
    echo "| $m | ${ins[$m]} | $(awk -v a="${ins[$m]}" -v b="${ins[static]}" 'BEGIN {printf "%.0f", a - b}') |"
done
