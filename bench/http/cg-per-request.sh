#!/usr/bin/env bash
# User-space instructions per keep-alive request of an HTTP server, by
# callgrind (noise-free): the server runs under valgrind on CPU 0, `ab -k -c10`
# on CPU 1 sends N1 then (in a second run) N2 requests, and the difference of
# the two totals over N2 - N1 is the per-request figure (start-up and shutdown
# cancel out).
#
# usage: bench/http/cg-per-request.sh [--n "N1 N2"] [--path /P] SERVER [ARGS...]
#   SERVER must take --host and --port and print its port like the bundled
#   servers do ("listening on http://HOST:PORT/"); SIGINT must stop it.
# Prints one line: "<instructions per request> <N1 total> <N2 total>".
set -euo pipefail
ns="20000 60000"
path=/
while [ $# -gt 0 ]; do
    case "$1" in
    --n) ns=$2; shift 2 ;;
    --path) path=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { sed -n '2,13p' "$0"; exit 2; }
command -v valgrind >/dev/null && command -v ab >/dev/null ||
    { echo "needs valgrind and ab (apache2-utils)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
totals=()
for n in $ns; do
    out=$work/cg.$n
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" "$@" \
        --host 127.0.0.1 --port 0 >"$work/server.$n.log" 2>&1 &
    pid=$!
    port=
    for _ in $(seq 300); do # valgrind start-up: up to 30 s
        port=$(sed -n 's/.*http:\/\/[^ ]*:\([0-9][0-9]*\)\/.*/\1/p' "$work/server.$n.log" 2>/dev/null | head -1 || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/server.$n.log" >&2; kill "$pid"; exit 1; }
    taskset -c 1 timeout 300 ab -q -k -c 10 -n "$n" "http://127.0.0.1:$port$path" >"$work/ab.$n" 2>&1
    grep -q "^Failed requests: *0" "$work/ab.$n" || { cat "$work/ab.$n" >&2; kill "$pid"; exit 1; }
    kill -INT "$pid"
    wait "$pid" || true
    totals+=("$(awk '/^(summary|totals):/ { print $2; exit }' "$out")")
done
set -- $ns
echo "$(((totals[1] - totals[0]) / ($2 - $1))) ${totals[0]} ${totals[1]}"
