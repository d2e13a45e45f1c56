#!/usr/bin/env bash
# tests/redis/hiredis1.sh - the redis module against hiredis 1.2 (macOS
# Homebrew's line), not only Debian's 0.14: builds hiredis 1.2.0 from the C
# sources bundled in the npm package redis-fast-driver@2.2.6 (deps/hiredis),
# then configures hellepoll with it (a pkg-config file of its own), builds
# the redis module, <hellepoll/redis-adapter.h> with its scheduleTimer path,
# and the redis tests, and runs them (tests/redis: real redis-server).
# Skips, loudly, when npm or the registry is unreachable.
#
#   tests/redis/hiredis1.sh [BUILD_DIR]   (default build/hiredis1)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build/hiredis1}
pkg=redis-fast-driver@2.2.6
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if ! command -v npm >/dev/null; then
    echo "=== hiredis 1.x: SKIPPED: npm not installed (needed to fetch $pkg)"
    exit 0
fi
src="$dir/src"
if [ ! -f "$src/package/deps/hiredis/hiredis.h" ]; then
    rm -rf "$src" && mkdir -p "$src"
    if ! (cd "$src" && timeout 120 npm pack --silent "$pkg" >npm.log 2>&1); then
        echo "=== hiredis 1.x: SKIPPED: npm pack $pkg failed (registry unreachable?):"
        tail -5 "$src/npm.log"
        exit 0
    fi
    tar xzf "$src"/redis-fast-driver-*.tgz -C "$src"
fi
h="$src/package/deps/hiredis"
ver=$(awk '/define HIREDIS_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' "$h/hiredis.h")
case "$ver" in 1.*) ;; *) echo "=== hiredis 1.x: $pkg bundles hiredis $ver, not 1.x"; exit 1 ;; esac
echo "=== hiredis 1.x: building hiredis $ver from $pkg"
prefix="$dir/prefix"
rm -rf "$prefix" "$dir/obj" && mkdir -p "$prefix/include/hiredis/adapters" "$prefix/lib/pkgconfig" "$dir/obj"
for f in alloc async hiredis net read sds sockcompat; do
    cc -std=c99 -O1 -g -fPIC -D_GNU_SOURCE -w -c "$h/$f.c" -o "$dir/obj/$f.o"
done
ar rcs "$prefix/lib/libhiredis.a" "$dir"/obj/*.o
cp "$h"/*.h "$prefix/include/hiredis/"
cp "$h"/adapters/*.h "$prefix/include/hiredis/adapters/"
cat >"$prefix/lib/pkgconfig/hiredis.pc" <<EOF
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib
Name: hiredis
Description: hiredis $ver built from $pkg for tests/redis/hiredis1.sh
Version: $ver
Cflags: -I\${includedir}
Libs: -L\${libdir} -lhiredis
EOF
echo "=== hiredis 1.x: configure + build the redis module and tests against it"
build="$dir/build"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cmake -S . -B "$build" -DHP_WERROR=ON -DHP_BUILD_TESTS=ON \
    -DHP_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Debug -DHP_SANITIZE=address,undefined >"$dir/configure.log"
got=$(grep -E '^HIREDIS_VERSION:' "$build/CMakeCache.txt" | cut -d= -f2)
if [ "$got" != "$ver" ]; then
    echo "=== hiredis 1.x: configured with hiredis '$got', not $ver"
    exit 1
fi
cmake --build "$build" -j2 --target test_redis_client test_redis_adapter >"$dir/build.log" 2>&1 ||
    { grep -E "error|warning" "$dir/build.log" | head -40; exit 1; }
echo "=== hiredis 1.x: redis tests (hiredis $ver)"
(cd "$build" && ctest -R '^redis\.' --output-on-failure)
