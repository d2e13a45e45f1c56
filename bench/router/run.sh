#!/usr/bin/env bash
# bench/router/run.sh - the router benchmark: lookups on hellepoll's router
# and on libr3 (Debian libr3-dev) over the go-http-routing-benchmark tables
# in tests/http/routes (GithubAll style: every route requested with its own
# pattern text and method, once per round), and the routed hello.
#
# Reports, per table: user-space instructions per lookup (callgrind, the
# lookup rounds only; "net" subtracts the benchmark's own loop, measured
# with --impl none), allocations per lookup, ns per lookup (median of 7,
# pinned, under the bench lock), and r3/hellepoll ratios. Then
# instructions per keep-alive request of examples/hello and of
# bench/router/routed-hello (hello through the router with the GitHub table
# loaded), both on the same request-target (a route with two parameters, and
# a static one): ab -k -c10 -n N for two N under callgrind, difference over
# difference, as bench/http/run.sh measures hello.
#
#   bench/router/run.sh              everything
#   bench/router/run.sh --quick      fewer rounds and requests
#   bench/router/run.sh --no-time    instruction counts only (no lock needed)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir=$repo/build/bench-router
tables="github parse gplus static"
cg_rounds=20
time_rounds=20000
cg_n="10000 30000"
lock=/tmp/hp-bench.lock
cpu=1
do_build=1
do_time=1
do_hello=1
port=18391
targets="/repos/julienschmidt/httprouter/stargazers /user/repos"

usage() {
    cat <<EOF
usage: $0 [options]
  --quick          callgrind N "3000 9000", 2000 timed rounds
  --no-build       use the binaries in the build directory
  --no-time        skip the timed (ns) runs
  --no-hello       skip the routed-hello measurement
  --build-dir DIR  CMake build directory (default $build_dir)
  --cpu C          CPU for the timed runs (default $cpu)
EOF
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) cg_n="3000 9000"; time_rounds=2000 ;;
    --no-build) do_build=0 ;;
    --no-time) do_time=0 ;;
    --no-hello) do_hello=0 ;;
    --build-dir) build_dir="$2"; shift ;;
    --cpu) cpu="$2"; shift ;;
    *) usage ;;
    esac
    shift
done

for tool in valgrind cmake; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [ "$do_build" = 1 ]; then
    echo "building Release in $build_dir" >&2
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHP_BUILD_BENCH=ON \
        -DHP_BUILD_TESTS=OFF >"$build_dir.log" 2>&1 || { tail -20 "$build_dir.log"; exit 1; }
    cmake --build "$build_dir" -j2 --target bench_router_lookup routed-hello hello \
        >>"$build_dir.log" 2>&1 || { tail -20 "$build_dir.log"; exit 1; }
fi
bench=$build_dir/bench/router/bench_router_lookup
impls="none hp hp-id"
"$bench" --routes "$repo/tests/http/routes/github.txt" --impl r3 --rounds 1 >/dev/null 2>&1 &&
    impls="none hp hp-id r3" || echo "libr3 not built in (libr3-dev missing?): hellepoll only" >&2
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

field() { # KEY LINE
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

declare -A ir al ns nr
for t in $tables; do
    f=$repo/tests/http/routes/$t.txt
    for impl in $impls; do
        out=$(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.$t.$impl" \
            "$bench" --routes "$f" --impl "$impl" --callgrind --rounds "$cg_rounds" 2>"$tmp/vg.log")
        total=$(awk '/^totals:/ { print $2; exit }' "$tmp/cg.$t.$impl")
        lookups=$(field lookups "$out")
        ir[$t.$impl]=$(awk -v a="$total" -v b="$lookups" 'BEGIN { printf "%.1f", a / b }')
        al[$t.$impl]=$(field allocs_per_lookup "$out")
        nr[$t]=$(field routes "$out")
        if [ "$do_time" = 1 ] && [ "$impl" != none ]; then
            out=$(flock "$lock" taskset -c "$cpu" "$bench" --routes "$f" --impl "$impl" \
                --rounds "$time_rounds")
            ns[$t.$impl]=$(field ns_per_lookup "$out")
        fi
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.1fx", a / b }'; }
net() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

echo
echo "Router lookups, GithubAll style (callgrind: instructions per lookup; net = minus the loop):"
echo
echo "hellepoll: hp_router_match() (method token); by enum: hp_router_match_id() (the parser's"
echo "enum hp_http_method, as hp_router_dispatch() looks up); ratios are libr3 over the token API."
echo
echo "| table | routes | hellepoll instr (net) | by enum instr (net) | libr3 instr (net) | libr3/hellepoll (net) | hellepoll allocs | libr3 allocs | hellepoll ns | by enum ns | libr3 ns | libr3/hellepoll ns |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in $tables; do
    h=${ir[$t.hp]} i=${ir[$t.hp-id]} z=${ir[$t.none]} r=${ir[$t.r3]:-}
    hn=$(net "$h" "$z")
    rn=""
    [ -n "$r" ] && rn=$(net "$r" "$z")
    printf '| %s | %s | %s (%s) | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "${nr[$t]}" \
        "$h" "$hn" "$i" "$(net "$i" "$z")" \
        "${r:+$r ($rn)}" "$(ratio "$rn" "$hn")" "${al[$t.hp]}" "${al[$t.r3]:--}" \
        "${ns[$t.hp]:--}" "${ns[$t.hp-id]:--}" "${ns[$t.r3]:--}" "$(ratio "${ns[$t.r3]:-}" "${ns[$t.hp]:-}")"
done

[ "$do_hello" = 1 ] || exit 0
command -v ab >/dev/null || { echo "missing: ab (apache2-utils): no routed hello" >&2; exit 0; }

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# instr SERVER N TARGET: instructions of the whole server process for N keep-alive requests.
instr() {
    local name=$1 n=$2 target=$3 bin args=() f=$tmp/cg.hello.$1.$2 pid
    case "$name" in
    hello) bin=$build_dir/examples/hello/hello ;;
    routed) bin=$build_dir/bench/router/routed-hello
        args=(--routes "$repo/tests/http/routes/github.txt") ;;
    esac
    port=$((port + 1))
    valgrind --tool=callgrind --callgrind-out-file="$f" "$bin" --host 127.0.0.1 --port "$port" \
        "${args[@]}" >"$tmp/srv.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_port "$port" || { echo "$name did not start" >&2; cat "$tmp/srv.log" >&2; exit 1; }
    ab -q -k -c 10 -n "$n" "http://127.0.0.1:$port$target" >"$f.ab" 2>&1
    grep -q "^Complete requests: *$n" "$f.ab" || { echo "ab failed" >&2; cat "$f.ab" >&2; exit 1; }
    grep -q "^Non-2xx responses" "$f.ab" && { echo "non-2xx answers" >&2; exit 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^totals:/ { print $2; exit }' "$f"
}

set -- $cg_n
echo
echo "Instructions per keep-alive request (ab -k -c10, (I($2) - I($1)) / ($2 - $1)):"
echo
echo "| request | hello | routed-hello (GitHub table) | routed vs hello |"
echo "|---|---:|---:|---:|"
for target in $targets; do
    declare -A per
    for s in hello routed; do
        a=$(instr "$s" "$1" "$target")
        b=$(instr "$s" "$2" "$target")
        per[$s]=$(awk -v a="$a" -v b="$b" -v n1="$1" -v n2="$2" 'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')
    done
    printf '| GET %s | %s | %s | %s |\n' "$target" "${per[hello]}" "${per[routed]}" \
        "$(awk -v a="${per[routed]}" -v b="${per[hello]}" 'BEGIN { printf "%+.1f %%", (a - b) * 100 / b }')"
done
