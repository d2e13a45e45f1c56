#!/usr/bin/env bash
# Build and test hellepoll in every configuration CI checks:
#   for each driver (epoll, poll, kqueue on the test-only emulation):
#     Debug + ASan/UBSan, and Release; all with -Werror, gcc;
#   a clang build of the library, examples and tests (-Werror);
#   the redis module and its tests against hiredis 1.2 built from npm sources
#   (tests/redis/hiredis1.sh; skipped loudly without npm or the registry);
#   the test suite once under valgrind (leak check);
#   every libFuzzer target for HP_FUZZ_SECONDS each (default 30) if clang is there;
#   the macOS cross-builds (kqueue and poll) with zig, if .ci/cross-macos.sh exists.
# It first installs the test dependencies (tests/install-deps.sh: apt-get, as
# root or with sudo; HP_NO_INSTALL=1 skips that).
# Usage: tests/run.sh [--quick]   (--quick: epoll Debug+ASan only)
# Build trees go to ${HP_BUILD_ROOT:-build}/<config>.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${HP_BUILD_ROOT:-build}
jobs=$(nproc 2>/dev/null || echo 2)
quick=0
[ "${1:-}" = "--quick" ] && quick=1
[ "${HP_NO_INSTALL:-0}" = 1 ] || bash tests/install-deps.sh
failed=()
summary=()
total_passed=0
total_failed=0

run_config() { # name, cmake args...
    local name=$1; shift
    local dir="$root/$name"
    echo "=== $name: configure"
    if ! cmake -S . -B "$dir" -DHP_WERROR=ON -DHP_BUILD_TESTS=ON "$@" >"$dir.configure.log" 2>&1; then
        cat "$dir.configure.log"; failed+=("$name (configure)"); return
    fi
    echo "=== $name: build"
    if ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
        grep -E "error|warning" "$dir.build.log" | head -50 || tail -50 "$dir.build.log"
        failed+=("$name (build)"); return
    fi
    echo "=== $name: test"
    local out
    if out=$(cd "$dir" && ctest --output-on-failure -j"$jobs" 2>&1); then :; else failed+=("$name (test)"); fi
    echo "$out" | tail -40
    local line
    line=$(echo "$out" | grep -E 'tests passed|tests failed' | tail -1)
    summary+=("$name: $line")
    # "97% tests passed, 1 tests failed out of 15"
    if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
        total_failed=$((total_failed + BASH_REMATCH[1]))
        total_passed=$((total_passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
    fi
}

mkdir -p "$root"
san=(-DCMAKE_BUILD_TYPE=Debug -DHP_SANITIZE=address,undefined)
run_config epoll-asan -DBACKEND=epoll "${san[@]}"
if [ $quick = 0 ]; then
    run_config epoll-release -DBACKEND=epoll -DCMAKE_BUILD_TYPE=Release
    run_config poll-asan -DBACKEND=poll "${san[@]}"
    run_config poll-release -DBACKEND=poll -DCMAKE_BUILD_TYPE=Release
    if [ -f tests/support/kqueue-emu/CMakeLists.txt ]; then
        run_config kqueue-asan -DBACKEND=kqueue "${san[@]}"
        run_config kqueue-release -DBACKEND=kqueue -DCMAKE_BUILD_TYPE=Release
    fi
    if command -v clang >/dev/null; then
        run_config clang-epoll -DBACKEND=epoll -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug
    fi
    # The redis module against hiredis 1.2 (sources from npm; skips loudly without npm).
    if [ -f tests/redis/hiredis1.sh ] && pkg-config --exists hiredis 2>/dev/null; then
        if bash tests/redis/hiredis1.sh "$root/hiredis1"; then
            summary+=("hiredis 1.x: redis module, adapter and tests built and run (or skipped, see above)")
        else
            failed+=("hiredis 1.x (tests/redis/hiredis1.sh)")
        fi
    fi
    if command -v valgrind >/dev/null; then
        echo "=== valgrind: core tests (epoll, Debug, no sanitizer)"
        dir="$root/epoll-valgrind"
        cmake -S . -B "$dir" -DHP_WERROR=ON -DHP_BUILD_TESTS=ON -DBACKEND=epoll -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
            cmake --build "$dir" -j"$jobs" >/dev/null || failed+=("valgrind (build)")
        vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
            --show-leak-kinds=definite,indirect -q)
        for t in "$dir"/tests/*/test_*; do
            [ -x "$t" ] && [ -f "$t" ] || continue
            case "$t" in *.py | *.log) continue ;; esac
            case "$(basename "$t")" in *kqueue_emu*) continue ;; esac
            if ! HP_TEST_VALGRIND=1 timeout 600 "${vg[@]}" "$t" >"$t.valgrind.log" 2>&1; then
                tail -30 "$t.valgrind.log"; failed+=("valgrind $(basename "$t")")
            fi
        done
        summary+=("valgrind: $(ls "$dir"/tests/*/test_* 2>/dev/null | grep -vc '\.log$') programs checked")
    fi
    if command -v clang >/dev/null && [ -f tests/fuzz/CMakeLists.txt ]; then
        echo "=== fuzz: every libFuzzer target for ${HP_FUZZ_SECONDS:-30} s each"
        dir="$root/fuzz"
        if cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DHP_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
            -DHP_BUILD_TESTS=ON -DHP_BUILD_EXAMPLES=OFF >/dev/null && cmake --build "$dir" -j"$jobs" >/dev/null; then
            # tests/fuzz/fuzz_<name>.c has its seeds in tests/fuzz/corpus/<name>.
            for fz in $(find "$dir/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort); do
                name=$(basename "$fz"); name=${name#fuzz_}
                mkdir -p "$dir/corpus-$name"
                seeds=()
                [ -d "tests/fuzz/corpus/$name" ] && seeds=("tests/fuzz/corpus/$name")
                if ! "$fz" -max_total_time="${HP_FUZZ_SECONDS:-30}" -timeout=10 -print_final_stats=1 \
                    -artifact_prefix="$dir/$name-" "$dir/corpus-$name" "${seeds[@]}" >"$dir/fuzz-$name.log" 2>&1; then
                    tail -40 "$dir/fuzz-$name.log"; failed+=("fuzz $name")
                fi
                summary+=("fuzz $name: $(grep -E 'stat::number_of_executed_units' "$dir/fuzz-$name.log" | tail -1)")
            done
        else
            failed+=("fuzz (build)")
        fi
    fi
    if [ -x .ci/cross-macos.sh ] || [ -f .ci/cross-macos.sh ]; then
        echo "=== macOS cross-builds"
        bash .ci/cross-macos.sh || failed+=("macOS cross-build")
    fi
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
    echo "ctest: $total_passed passed, $total_failed failed"
    exit 1
fi
echo "all configurations passed"
echo "ctest: $total_passed passed, $total_failed failed"
