#!/usr/bin/env python3
"""report.py - turn bench/http/run.sh result directories into results.md and
chart.dat (for plot.gp). Figures are medians over every round found in the
given directories; ratios are taken between medians.

    report.py --out DIR DIR [DIR...]
"""
import argparse
import csv
import glob
import os
import re
import statistics
import sys

SERVERS = ["hello", "nginx", "ceiling"]
WORKLOADS = [
    ("ab-close", "ab -c25, new connection per request"),
    ("ab-keep", "ab -k -c25, keep-alive"),
    ("wrk-keep", "wrk -t1 -c100, keep-alive"),
    ("wrk-pipe", "wrk -t1 -c256, 16 pipelined per write"),
]
READS = {"read", "readv", "recv", "recvfrom", "recvmsg", "recvmmsg"}
WRITES = {"write", "writev", "send", "sendto", "sendmsg", "sendmmsg", "sendfile"}
WAITS = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6"}
PIPELINE = 16


def tsv(dirs, name):
    rows = []
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.exists(path):
            with open(path) as f:
                rows += list(csv.DictReader(f, delimiter="\t"))
    return rows


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(s):
    try:
        v = float(s)
        return None if v != v else v
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def ratio(a, b):
    return a / b if a is not None and b else None


def throughput(dirs):
    """{(server, workload): dict of medians}"""
    cells = {}
    for r in tsv(dirs, "runs.tsv"):
        cells.setdefault((r["server"], r["workload"]), []).append(r)
    out = {}
    for key, rows in cells.items():
        cpu = [num(r["server_cpu_s"]) for r in rows]
        n = [num(r["requests"]) for r in rows]
        secs = [num(r["seconds"]) for r in rows]
        out[key] = {
            "rounds": len(rows),
            "rps": med([num(r.get("req_per_s")) for r in rows]),
            "p99": med([num(r["p99_ms"]) for r in rows]),
            "errors": sum(int(num(r["errors"]) or 0) for r in rows),
            "cpu_pct": med([100 * c / s if c is not None and s else None
                            for c, s in zip(cpu, secs)]),
            "client_pct": med([100 * num(r["client_cpu_s"]) / s if s else None
                               for r, s in zip(rows, secs)]),
            "foreign_pct": med([100 * num(r.get("foreign_cpu_s")) / s
                                if num(r.get("foreign_cpu_s")) is not None and s else None
                                for r, s in zip(rows, secs)]),
            "per_cpu": med([k / c if k and c else None for k, c in zip(n, cpu)]),
            "per_cpu_all": [k / c if k and c else None for k, c in zip(n, cpu)],
        }
    return out


def strace_table(path):
    counts = {}
    if not os.path.exists(path):
        return None
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[-1] != "total":
            counts[f[-1]] = counts.get(f[-1], 0) + int(f[3])
    return counts


def requests_in(path):
    if not os.path.exists(path):
        return None
    text = open(path).read()
    m = re.search(r"Complete requests:\s+(\d+)", text) or re.search(r"(\d+) requests in", text)
    return int(m.group(1)) if m else None


def syscalls(d, server):
    base = strace_table(os.path.join(d, "raw", f"strace.{server}.base.txt"))
    res = {}
    for what, per in (("keep", 1), ("close", 1), ("pipe", PIPELINE)):
        f = os.path.join(d, "raw", f"strace.{server}.{what}.txt")
        t, n = strace_table(f), requests_in(f + ".load")
        if t is None or base is None or not n:
            continue
        units = n / per
        diff = {k: t.get(k, 0) - base.get(k, 0) for k in t}
        group = {"read": 0, "write": 0, "wait": 0, "other": 0}
        others = {}
        for k, v in diff.items():
            g = "read" if k in READS else "write" if k in WRITES else "wait" if k in WAITS else None
            if g:
                group[g] += v
            else:
                group["other"] += v
                others[k] = v
        top = sorted(others.items(), key=lambda kv: -kv[1])[:6]
        res[what] = {g: v / units for g, v in group.items()}
        res[what]["top"] = ", ".join(f"{k} {v / units:.2f}" for k, v in top if v / units >= 0.01)
        res[what]["units"] = units
    return res


def run_name(d):
    return os.path.basename(os.path.normpath(d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    dirs = a.dirs
    L = []
    meta = open(os.path.join(dirs[0], "meta.txt")).read().splitlines() \
        if os.path.exists(os.path.join(dirs[0], "meta.txt")) else []
    L.append("# HTTP benchmark: hello vs nginx vs ceiling\n")
    L.append("Generated by `bench/http/run.sh` from " +
             ", ".join(f"`{os.path.relpath(d, os.path.dirname(os.path.abspath(d)))}`"
                       for d in dirs) + ".")
    L.append("Servers pinned to CPU 0, one worker; load generators on CPU 1.\n")
    L.append("```\n" + "\n".join(meta) + "\n```\n")
    if len(dirs) > 1:
        L.append("Runs merged here (rounds of all of them count toward the medians):\n")
        for d in dirs:
            m = os.path.join(d, "meta.txt")
            info = [l for l in open(m).read().splitlines()
                    if l.startswith(("date:", "git:", "sources:"))] if os.path.exists(m) else []
            L.append(f"- `{run_name(d)}`: " + "; ".join(info))
        L.append("")
    for d in dirs:
        ov = os.path.join(d, "overlap.txt")
        if os.path.exists(ov):
            L.append(f"**Warning:** another benchmark ran during parts of `{d}`:\n")
            L.append("```\n" + open(ov).read().strip() + "\n```\n")

    tp = throughput(dirs)
    servers = [s for s in SERVERS if any(k[0] == s for k in tp)] or SERVERS
    chart = []
    if tp:
        rounds = max(v["rounds"] for v in tp.values())
        L.append(f"## Throughput (median of {rounds} round{'s' if rounds > 1 else ''})\n")
        L.append("| workload | server | req/s | p99 ms | server CPU | client CPU | foreign CPU "
                 "| req per server-CPU-s | ×nginx | ×ceiling | errors |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w, title in WORKLOADS:
            row = [w]
            for s in servers:
                c = tp.get((s, w))
                if not c:
                    continue
                ng, ce = tp.get(("nginx", w)), tp.get(("ceiling", w))
                p99 = "n/a¹" if w == "wrk-pipe" else fmt(c["p99"], 2)
                L.append(f"| {title} | {s} | {fmt(c['rps'])} | {p99} | {fmt(c['cpu_pct'], 0, ' %')} "
                         f"| {fmt(c['client_pct'], 0, ' %')} | {fmt(c['foreign_pct'], 0, ' %')} "
                         f"| **{fmt(c['per_cpu'])}** "
                         f"| {fmt(ratio(c['per_cpu'], ng and ng['per_cpu']), 2)} "
                         f"| {fmt(ratio(c['per_cpu'], ce and ce['per_cpu']), 2)} | {c['errors']} |")
                title = ""
            for s in SERVERS:
                c = tp.get((s, w))
                row.append(f"{c['per_cpu'] / 1000:.1f}" if c and c["per_cpu"] else "0")
            for s in SERVERS:
                c = tp.get((s, w))
                row.append(f"{c['rps'] / 1000:.1f}" if c and c["rps"] else "0")
            chart.append(row)
        L.append("")
        L.append("¹ wrk's latency percentiles are not usable with pipelining: its "
                 "coordinated-omission correction takes the expected interval from the number of "
                 "responses (16× the number of round trips) and adds synthetic samples below the "
                 "histogram's minimum, which its percentile scan skips, so p99 comes out 0 or "
                 "too low.\n")
        rej = len(tsv(dirs, "rejected.tsv"))
        L.append("Server and client CPU are shares of the run's wall time (utime+stime of the "
                 "process from /proc, of the load generator from /usr/bin/time). Foreign CPU is "
                 "the rest of CPU 0 and CPU 1's busy time from /proc/stat: other processes or the "
                 "hypervisor. A run with more than 10 % foreign CPU is repeated (up to 3 tries; "
                 f"{rej} run{'s were' if rej != 1 else ' was'} repeated here).\n")
        L.append("Per-round requests per server-CPU-second:\n")
        L.append("| workload | " + " | ".join(servers) + " |")
        L.append("|---|" + "---|" * len(servers))
        for w, _ in WORKLOADS:
            if any((s, w) in tp for s in servers):
                L.append(f"| {w} | " + " | ".join(
                    ", ".join(fmt(x) for x in tp[(s, w)]["per_cpu_all"]) if (s, w) in tp else "—"
                    for s in servers) + " |")
        L.append("")

    idle = tsv(dirs, "idle.tsv")
    if idle:
        L.append("## Idle keep-alive connections\n")
        L.append(f"{idle[0]['conns']} connections, one request each, then idle; "
                 "growth of the server's RSS (VmRSS) per connection.\n")
        L.append("| server | connections answered | RSS before → after (kB) | bytes per connection |")
        L.append("|---|---:|---:|---:|")
        for s in servers:
            rows = [r for r in idle if r["server"] == s]
            if rows:
                b = med([num(r["bytes_per_conn"]) for r in rows])
                L.append(f"| {s} | {' / '.join(r['ok'] for r in rows)} "
                         f"| {' / '.join(r['rss_before_kb'] + ' → ' + r['rss_after_kb'] for r in rows)} "
                         f"| **{fmt(b)}** |")
        L.append("")

    ipr = {}
    if tsv(dirs, "callgrind.tsv"):
        L.append("## User-space instructions per request (callgrind)\n")
        L.append("The server runs under callgrind while `ab -k -c10 -n N` (keep-alive) or "
                 "`ab -c10 -n N` (a new connection per request) loads it, for two values of N. "
                 "(I₂ − I₁) / (N₂ − N₁) is the cost of one more request: start-up and shutdown "
                 "cancel.\n")
        L.append("| server | load | run | N₁ | instructions | N₂ | instructions | per request |")
        L.append("|---|---|---|---:|---:|---:|---:|---:|")
        for mode, title in (("keep", "keep-alive"), ("close", "new connection")):
            for s in servers:
                per = []
                for d in dirs:
                    rows = sorted((int(r["n"]), num(r["instructions"]))
                                  for r in tsv([d], "callgrind.tsv")
                                  if r["server"] == s and r.get("mode", "keep") == mode)
                    if len(rows) >= 2 and rows[0][1] and rows[-1][1] and rows[0][0] != rows[-1][0]:
                        (n1, i1), (n2, i2) = rows[0], rows[-1]
                        per.append((i2 - i1) / (n2 - n1))
                        L.append(f"| {s} | {title} | {run_name(d)} | {n1:,} | {fmt(i1)} "
                                 f"| {n2:,} | {fmt(i2)} | **{fmt(per[-1])}** |")
                if per and len(per) > 1:
                    L.append(f"| {s} | {title} | median | | | | | **{fmt(med(per))}** |")
                if per and mode == "keep":
                    ipr[s] = med(per)
        L.append("")

    sc = {s: syscalls(dirs[0], s) for s in servers}
    if any(sc.values()):
        L.append(f"## System calls (strace -c -f, minus a start/stop-only run; `{run_name(dirs[0])}`)\n")
        L.append("| server | load | reads | writes | epoll waits | other | largest others |")
        L.append("|---|---|---:|---:|---:|---:|---|")
        for s in servers:
            for what, title in (("keep", "per keep-alive request (ab -k -c10)"),
                                ("close", "per connection, one request (ab -c10)"),
                                ("pipe", f"per batch of {PIPELINE} pipelined (wrk -c10)")):
                c = sc[s].get(what)
                if c:
                    L.append(f"| {s} | {title} | {c['read']:.2f} | {c['write']:.2f} "
                             f"| {c['wait']:.2f} | {c['other']:.2f} | {c['top']} |")
        L.append("")

    conns = []
    for d in dirs:
        conns += [dict(r, run=run_name(d)) for r in tsv([d], "conns.tsv")]
    if conns:
        L.append("## 19,000 concurrent keep-alive connections\n")
        L.append("Two client processes open 9,500 each, one request per connection; when all "
                 "19,000 are open, every connection asks again.\n")
        L.append("| server | workers | run | connections answered twice | server fds open |")
        L.append("|---|---:|---|---:|---:|")
        for r in conns:
            L.append(f"| {r['server']} | {r['workers']} | {r['run']} "
                     f"| {r['ok_both_rounds']} / {r['conns']} | {r['server_fds']} |")
        L.append("")
        logs = [os.path.join(d, "raw", "nginx-error.log") for d in dirs]
        if any(os.path.exists(f) and "worker_connections are not enough" in open(f).read()
               for f in logs):
            L.append("nginx's error log says \"20000 worker_connections are not enough, reusing "
                     "connections\": once fewer than 1/16 of its worker_connections are free, "
                     "nginx closes idle keep-alive connections (32 at a time) to make room, "
                     "and those are the ones missing above.\n")

    wk = []
    for d in dirs:
        wk += [dict(r, run=run_name(d)) for r in tsv([d], "workers.tsv")]
    if wk:
        L.append("## hello --workers 1 vs 2 (server and wrk -t2 share both cores)\n")
        L.append("| workers | workload | run | req/s | server CPU-s | CPU-s per thread | wrk CPU-s "
                 "| foreign CPU-s | req per server-CPU-s |")
        L.append("|---:|---|---|---:|---:|---|---:|---:|---:|")
        for r in wk:
            n, secs, cpu = num(r["requests"]), num(r["seconds"]), num(r["server_cpu_s"])
            L.append(f"| {r['workers']} | {r['workload']} | {r['run']} "
                     f"| {fmt(n / secs if n and secs else None)} "
                     f"| {r['server_cpu_s']} | {r['per_thread_cpu_s']} | {r.get('client_cpu_s') or '—'} "
                     f"| {r.get('foreign_cpu_s') or '—'} "
                     f"| {fmt(n / cpu if n and cpu else None)} |")
        L.append("")

    # Targets of the issue, hello only.
    if any(k[0] == "hello" for k in tp) or "hello" in ipr:
        L.append("## Targets (hello)\n")
        L.append("| target | measured | met |")
        L.append("|---|---|---|")

        def cmp(w, factor):
            h, n = tp.get(("hello", w)), tp.get(("nginx", w))
            if not h or not n:
                return
            r = ratio(h["per_cpu"], n["per_cpu"])
            L.append(f"| {w}: req per server-CPU-s ≥ {factor}× nginx "
                     f"| {r:.2f}× ({fmt(h['per_cpu'])} vs {fmt(n['per_cpu'])}) "
                     f"| {'yes' if r >= factor else '**no**'} |")
        cmp("wrk-pipe", 5)
        for w in ("wrk-keep", "ab-keep", "ab-close"):
            cmp(w, 1)
        if "hello" in ipr:
            L.append(f"| user-space instructions per keep-alive request ≤ 2,500 "
                     f"| {fmt(ipr['hello'])} (nginx {fmt(ipr.get('nginx'))}, "
                     f"ceiling {fmt(ipr.get('ceiling'))}) | {'yes' if ipr['hello'] <= 2500 else '**no**'} |")
        rows = [num(r["bytes_per_conn"]) for r in idle if r["server"] == "hello"]
        if rows:
            b = med(rows)
            L.append(f"| idle keep-alive connection ≤ 256 B RSS | {fmt(b)} B "
                     f"| {'yes' if b <= 256 else '**no**'} |")
        for w in sorted({r["workers"] for r in conns if r["server"] == "hello"}):
            rows = [r for r in conns if r["server"] == "hello" and r["workers"] == w]
            okc = all(r["ok_both_rounds"] == r["conns"] for r in rows)
            L.append(f"| {rows[0]['conns']} keep-alive connections, --workers {w} "
                     f"| {' / '.join(r['ok_both_rounds'] for r in rows)} answered twice "
                     f"| {'yes' if okc else '**no**'} |")
        L.append("")

    L.append("## Access log")
    L.append("")
    L.append("Measured by `bench/http/accesslog.sh` (callgrind instructions per keep-alive request "
             "of hello with each log format): see [accesslog.md](accesslog.md).")
    L.append("")

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    with open(os.path.join(a.out, "chart.dat"), "w") as f:
        f.write("# workload, req per server-CPU-s (thousands) " + " ".join(SERVERS) +
                ", req/s (thousands) " + " ".join(SERVERS) + "\n")
        for row in chart:
            f.write(" ".join(row) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    sys.exit(main())
