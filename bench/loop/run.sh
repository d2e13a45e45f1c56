#!/usr/bin/env bash
# bench/loop/run.sh - build and run the loop micro-benchmark on hellepoll,
# libev, libevent and libuv; print a markdown table of ns/event (median of
# alternating rounds) and user-space instructions/event (callgrind, event
# phase only). See bench/README.md.
#
#   bench/loop/run.sh                 full matrix: 18 rows x 4 libs (~30 min here)
#   bench/loop/run.sh --quick         8 rows, 3 rounds, fewer events (~2 min)
#   bench/loop/run.sh --n 100 --out D slice of the matrix, results appended to D
#   bench/loop/run.sh --report D      only print the table for the results in D
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

ns_list="100 1000 9000"
as_list="1 100 1000"
ts_list="0 1"
libs="hp ev event uv"
rounds=5
events=1000000
cg_events=200000
build_dir="$repo/build-bench"
out=""
cpu=1
do_build=1
do_time=1
do_cg=1
report_only=""

usage() {
    cat <<EOF
usage: $0 [options]
  --quick            N in {100, 9000}, A in {1, 1000}, 3 rounds, 200k events, 50k under callgrind
  --n LIST           socketpairs per ring (default "$ns_list")
  --a LIST           bytes in flight (default "$as_list")
  --timers LIST      0 and/or 1 (default "$ts_list")
  --libs LIST        any of: hp ev event uv (default "$libs")
  --rounds R         timed rounds per row (default $rounds)
  --events E         events per timed run (default $events)
  --cg-events E      events per callgrind run (default $cg_events)
  --cpu C            pin to this CPU with taskset (default $cpu; -1: no pinning)
  --build-dir DIR    CMake build directory (default $build_dir)
  --out DIR          results directory; appended to if it exists
                     (default $repo/bench/results/loop-<date>)
  --no-build         use the binaries already in the build directory
  --no-time          skip the timed rounds
  --no-callgrind     skip the callgrind pass
  --report DIR       print the table for DIR and exit
EOF
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick)
        ns_list="100 9000"
        as_list="1 1000"
        rounds=3
        events=200000
        cg_events=50000
        ;;
    --n) ns_list="$2"; shift ;;
    --a) as_list="$2"; shift ;;
    --timers) ts_list="$2"; shift ;;
    --libs) libs="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --events) events="$2"; shift ;;
    --cg-events) cg_events="$2"; shift ;;
    --cpu) cpu="$2"; shift ;;
    --build-dir) build_dir="$2"; shift ;;
    --out) out="$2"; shift ;;
    --no-build) do_build=0 ;;
    --no-time) do_time=0 ;;
    --no-callgrind) do_cg=0 ;;
    --report) report_only="$2"; shift ;;
    *) usage ;;
    esac
    shift
done

declare -A libname=([hp]=hellepoll [ev]=libev [event]=libevent [uv]=libuv)

# report DIR: medians and instruction counts from DIR/raw.txt as markdown tables.
report() {
    awk '
    function median(key,   n, i, j, t, v) {
        n = cnt[key]
        if (n == 0) return ""
        for (i = 1; i <= n; i++) v[i] = val[key, i]
        for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
        return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function field(name,   i) {
        for (i = 2; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
        return ""
    }
    function add(kind, lib, row, x,   k) { k = kind SUBSEP lib SUBSEP row; val[k, ++cnt[k]] = x }
    function cell(m) { return m == "" ? " - |" : sprintf(" %.0f |", m) }
    function ratio(a, b) { return (a == "" || b == "" || b == 0) ? " - |" : sprintf(" %.2f |", a / b) }
    # table(kinds, title): one row per (N, A, timers), one column per library and kind.
    function table(k1, k2, t1, t2,   i, r, x, m) {
        printf "| N | A | timers |"
        for (i = 1; i <= nl; i++) printf " %s %s |", L[i], t1
        if (k2 != "") for (i = 1; i <= nl; i++) printf " %s %s |", L[i], t2
        printf " hp/ev %s |%s\n|---:|---:|:---:|", t1, k2 != "" ? " hp/ev " t2 " |" : ""
        for (i = 1; i <= (k2 != "" ? 2 * nl + 2 : nl + 1); i++) printf "---:|"
        printf "\n"
        for (r = 1; r <= nrows; r++) {
            split(rows[r], x, SUBSEP)
            printf "| %d | %d | %s |", x[1], x[2], x[3] ? "on" : "off"
            for (i = 1; i <= nl; i++) { m1[i] = median(k1 SUBSEP L[i] SUBSEP rows[r]); printf "%s", cell(m1[i]) }
            if (k2 != "") for (i = 1; i <= nl; i++) { m2[i] = median(k2 SUBSEP L[i] SUBSEP rows[r]); printf "%s", cell(m2[i]) }
            printf "%s", ratio(m1[1], m1[2])
            if (k2 != "") printf "%s", ratio(m2[1], m2[2])
            printf "\n"
        }
    }
    $1 == "RESULT" || $1 == "CALLGRIND" {
        lib = field("lib"); row = field("n") SUBSEP field("a") SUBSEP field("timers")
        if (!(row in seen)) { seen[row] = 1; rows[++nrows] = row }
        if ($1 == "RESULT") { add("t", lib, row, field("ns_per_event") + 0); if (field("cpu_ns_per_event") != "") add("u", lib, row, field("cpu_ns_per_event") + 0) }
        else add("c", lib, row, field("ir") / field("events"))
        if (field("misses") + 0 > 0 || field("fired") + 0 > 0) bad = bad "\n" $0
    }
    END {
        nl = split("hellepoll libev libevent libuv", L, " ")
        for (i = 2; i <= nrows; i++) { # sort rows by N, A, timers
            r = rows[i]; split(r, x, SUBSEP)
            for (j = i - 1; j >= 1; j--) {
                split(rows[j], y, SUBSEP)
                if (y[1] + 0 < x[1] + 0 || (y[1] == x[1] && (y[2] + 0 < x[2] + 0 || (y[2] == x[2] && y[3] + 0 <= x[3] + 0)))) break
                rows[j + 1] = rows[j]
            }
            rows[j + 1] = r
        }
        print "Wall-clock ns/event (median of the rounds) and user-space instructions/event (callgrind):\n"
        table("t", "c", "ns/ev", "instr/ev")
        print "\nCPU ns/event (process CPU time of the event phase, median of the same rounds):\n"
        table("u", "", "cpu ns/ev", "")
        if (bad != "") printf "\nWARNING: runs with misses or fired timers:%s\n", bad
    }' "$1/raw.txt"
}

if [ -n "$report_only" ]; then
    report "$report_only"
    exit 0
fi

out=${out:-$repo/bench/results/loop-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
raw="$out/raw.txt"
touch "$raw"

if [ "$do_build" = 1 ]; then
    echo "# building in $build_dir (Release, -O2)" >&2
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" -DHP_BUILD_BENCH=ON \
        -DHP_BUILD_TESTS=OFF -DHP_BUILD_EXAMPLES=OFF >"$out/build.log" 2>&1 ||
        { cat "$out/build.log" >&2; exit 1; }
    cmake --build "$build_dir" --target bench_loop -j "$(nproc)" >>"$out/build.log" 2>&1 ||
        { tail -50 "$out/build.log" >&2; exit 1; }
    # What the binaries were built from, for the results' meta.txt (--no-build reuses them).
    echo "$(date -u +%FT%TZ) $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "+ $(git -C "$repo" status --porcelain -- core backends 2>/dev/null | wc -l) modified files" \
        "in core/ and backends/" >"$build_dir/bench/built-from.txt"
fi

bins=()
for l in $libs; do
    b="$build_dir/bench/bench_loop_$l"
    if [ -x "$b" ]; then
        bins+=("$l")
    else
        echo "# $b missing; ${libname[$l]:-$l} skipped" >&2
    fi
done
[ ${#bins[@]} -gt 0 ] || { echo "no benchmark binaries in $build_dir/bench" >&2; exit 1; }

pin=()
if [ "$cpu" != -1 ] && command -v taskset >/dev/null && taskset -c "$cpu" true 2>/dev/null; then
    pin=(taskset -c "$cpu")
fi

{
    echo "# $(date -u +%FT%TZ) $(uname -srm) cpu: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "# binaries built: $(cat "$build_dir/bench/built-from.txt" 2>/dev/null || echo unknown)"
    echo "# rows: n={$ns_list} a={$as_list} timers={$ts_list} libs={${bins[*]}} rounds=$rounds events=$events cg_events=$cg_events pin=${pin[*]:-none}"
} >>"$out/meta.txt"
echo "# results in $out" >&2

start=$SECONDS
if [ "$do_time" = 1 ]; then
    for n in $ns_list; do
        for a in $as_list; do
            for t in $ts_list; do
                for ((r = 0; r < rounds; r++)); do
                    # Alternate the order of the libraries from round to round.
                    nb=${#bins[@]}
                    for ((k = 0; k < nb; k++)); do
                        l=${bins[$(((k + r) % nb))]}
                        line=$("${pin[@]}" "$build_dir/bench/bench_loop_$l" -n "$n" -a "$a" -t "$t" -e "$events")
                        echo "$line" >>"$raw"
                        echo "[$((SECONDS - start))s] round $((r + 1))/$rounds ${line#RESULT }" >&2
                    done
                done
            done
        done
    done
fi

if [ "$do_cg" = 1 ] && command -v valgrind >/dev/null; then
    for n in $ns_list; do
        for a in $as_list; do
            for t in $ts_list; do
                for l in "${bins[@]}"; do
                    cg="$out/callgrind.$l.n$n.a$a.t$t.out"
                    line=$("${pin[@]}" valgrind --tool=callgrind --instr-atstart=no \
                        --callgrind-out-file="$cg" "$build_dir/bench/bench_loop_$l" \
                        -n "$n" -a "$a" -t "$t" -e "$cg_events" 2>"$cg.log")
                    ir=$(awk '/^totals:/ {print $2}' "$cg")
                    ev=$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$line")
                    rest=$(sed 's/^RESULT lib=[^ ]* n=[0-9]* a=[0-9]* timers=[0-9]* events=[0-9]* //' <<<"$line")
                    echo "CALLGRIND lib=${libname[$l]} n=$n a=$a timers=$t events=$ev ir=$ir $rest" >>"$raw"
                    echo "[$((SECONDS - start))s] callgrind ${libname[$l]} n=$n a=$a timers=$t: $ir Ir / $ev events" >&2
                done
            done
        done
    done
fi
echo "# done in $((SECONDS - start)) s" >&2

report "$out" | tee "$out/results.md"
