#!/usr/bin/env bash
# Install what the test suite needs on Debian 12 (apt-get; as root, or with
# sudo). Does nothing where apt-get is missing. Safe to run again.
set -euo pipefail
command -v apt-get >/dev/null || { echo "install-deps: no apt-get; install the packages by hand"; exit 0; }
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
pkgs=(build-essential cmake pkg-config libcmocka-dev clang libclang-rt-14-dev valgrind
      curl python3 ca-certificates
      # modules and their examples
      libjansson-dev libhiredis-dev libpq-dev
      # libmemcached: ketama placement is checked against it; bench/clients compares with it
      libmemcached-dev
      # real servers the client tests start themselves
      postgresql redis-server memcached
      # redis-benchmark (bench/clients)
      redis-tools
      # real clients
      chromium chromium-driver
      # makes the WebM video Chromium seeks in (tests/http/test_static.py)
      ffmpeg
      # bench/tfb's chart
      python3-matplotlib)
# npm (for zig, the macOS cross-compiler) only if missing: where Node.js comes
# from elsewhere (nodesource), Debian's npm conflicts with it.
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
