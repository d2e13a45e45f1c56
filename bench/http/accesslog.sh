#!/usr/bin/env bash
# The cost of the access log: callgrind instructions per keep-alive request of
# hello without a log and with each format to a file (bench/http/cg-per-request.sh).
# usage: bench/http/accesslog.sh [BUILD_DIR]   (a Release build; default build/release)
# Results: bench/http/accesslog.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
hello=$build/examples/hello/hello
[ -x "$hello" ] || { echo "build $hello first (Release)" >&2; exit 2; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
base=$(bench/http/cg-per-request.sh "$hello" | cut -d' ' -f1)
printf '%-10s %8s %8s\n' format instr ratio
printf '%-10s %8s %8s\n' none "$base" 1.00
for f in combined common json; do
    n=$(bench/http/cg-per-request.sh "$hello" --access-log "$log/$f.log" --access-log-format "$f" | cut -d' ' -f1)
    printf '%-10s %8s %8s\n' "$f" "$n" "$(awk -v a="$n" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
done
