#!/usr/bin/python3
"""bench/tfb/report.py DIR - results.md and chart.png from DIR/results.tsv
(written by bench/tfb/run.sh) and DIR/meta.txt."""
import csv
import os
import sys

TESTS = ["json", "plaintext", "db", "queries", "fortunes", "updates", "cached-queries"]
LABELS = {"plaintext": "plaintext (pipelined 16)", "queries": "queries (20)",
          "updates": "updates (20)", "cached-queries": "cached-queries (20)"}
APPS = ["hellepoll", "node", "tornado"]
# The goals of issue 13, in requests per app-CPU-second: (peer, test) -> factor.
GOALS = {("node", "db"): 7, ("node", "fortunes"): 7, ("node", "queries"): 5,
         ("node", "updates"): 5, ("node", "plaintext"): 5}
GOALS.update({("tornado", t): 10 for t in TESTS})


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def load(d):
    """{(app, test): medians over the rounds of req_per_s, p99_ms, app_cpu_s, per_cpu,
    and the sum of errors}"""
    runs = {}
    with open(os.path.join(d, "results.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            cpu = float(r["app_cpu_s"])
            r["per_cpu"] = int(r["requests"]) / cpu if cpu > 0 else float("nan")
            runs.setdefault((r["app"], r["test"]), []).append(r)
    rows = {}
    for key, rs in runs.items():
        p99 = [float(r["p99_ms"]) for r in rs if r["p99_ms"] != "n/a"]
        rows[key] = {
            "rounds": len(rs),
            "req_per_s": median([float(r["req_per_s"]) for r in rs]),
            "p99_ms": f"{median(p99):.2f}" if p99 else "n/a",
            "app_cpu_s": f"{median([float(r['app_cpu_s']) for r in rs]):.2f}",
            "per_cpu": median([r["per_cpu"] for r in rs]),
            "errors": sum(int(r["errors"]) for r in rs),
        }
    return rows


def nginx_pipelined():
    """nginx's requests per server-CPU-second with 16 pipelined requests per write,
    from the HTTP benchmark's published table (bench/http/results.md), or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http", "results.md")
    workload = ""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 8 or not line.startswith("|"):
            continue
        workload = cells[0] or workload
        if "pipelin" in workload and cells[1] == "nginx":
            try:
                return float(cells[7].strip("*").replace(",", ""))
            except ValueError:
                return None
    return None


def fmt(x, digits=0):
    return f"{x:,.{digits}f}" if x == x else "n/a"


def main():
    d = sys.argv[1]
    rows = load(d)
    apps = [a for a in APPS if any(k[0] == a for k in rows)]
    tests = [t for t in TESTS if any(k[1] == t for k in rows)]
    meta = open(os.path.join(d, "meta.txt")).read().strip().splitlines()
    md = ["# TFB test types: hellepoll vs Node.js vs Tornado", "",
          "Produced by `bench/tfb/run.sh` (one command; see its header). One worker per app "
          "pinned to CPU 0, PostgreSQL 15 and wrk on CPU 1; every app passed "
          "`tests/tfb/check.py` before it was timed. *req/CPU-s* is requests per second of "
          "the app's own CPU time (utime+stime from /proc/PID/stat), the figure that does "
          "not depend on how much CPU the database and the load generator left over. "
          "With several rounds every figure is the median of the rounds (errors: the sum).",
          "",
          "```"] + meta + ["```", ""]
    md += ["| test | app | req/s | p99 ms | app CPU s | req/CPU-s | errors |",
           "|---|---|--:|--:|--:|--:|--:|"]
    for t in tests:
        for a in apps:
            r = rows.get((a, t))
            if r:
                md.append(f"| {LABELS.get(t, t)} | {a} | {fmt(float(r['req_per_s']))} | "
                          f"{r['p99_ms']} | {r['app_cpu_s']} | {fmt(r['per_cpu'])} | "
                          f"{r['errors']} |")
    base = apps[0]
    peers = apps[1:]
    if peers:
        md += ["", f"Ratios, {base} / peer (req/CPU-s, and req/s in brackets); "
               "goal from issue 13 where there is one:", "",
               "| test | " + " | ".join(f"vs {p}" for p in peers) + " |",
               "|---|" + "--:|" * len(peers)]
        for t in tests:
            cells = []
            for p in peers:
                b, o = rows.get((base, t)), rows.get((p, t))
                if not b or not o:
                    cells.append("n/a")
                    continue
                ratio = b["per_cpu"] / o["per_cpu"]
                rps = float(b["req_per_s"]) / max(float(o["req_per_s"]), 1)
                cell = f"{ratio:.1f}× ({rps:.1f}×)"
                goal = GOALS.get((p, t)) if base == "hellepoll" else None
                if goal:
                    cell += f" goal ≥{goal}×: {'met' if ratio >= goal else 'NOT met'}"
                cells.append(cell)
            md.append(f"| {LABELS.get(t, t)} | " + " | ".join(cells) + " |")
    ngx = nginx_pipelined()
    if base == "hellepoll" and ngx and (base, "plaintext") in rows:
        ours = rows[(base, "plaintext")]["per_cpu"]
        md += ["", f"Plaintext against nginx: {fmt(ours)} req/CPU-s here vs {fmt(ngx)} for nginx "
               "with 16 pipelined requests per write in the HTTP benchmark "
               "([bench/http/results.md](../http/results.md), another run): "
               f"{ours / ngx:.1f}× (goal ≥1×: {'met' if ours >= ngx else 'NOT met'})."]
    md += ["", "Notes written by hand on this run and earlier ones: [notes.md](notes.md).", ""]
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write("\n".join(md))
    chart(d, rows, apps, tests)


def chart(d, rows, apps, tests):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: no matplotlib (apt-get install python3-matplotlib): no chart",
              file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=100)
    width = 0.8 / len(apps)
    colors = {"hellepoll": "#d95f02", "node": "#1b9e77", "tornado": "#7570b3"}
    for k, a in enumerate(apps):
        xs = [i + (k - (len(apps) - 1) / 2) * width for i in range(len(tests))]
        ys = [rows[(a, t)]["per_cpu"] if (a, t) in rows else 0 for t in tests]
        ax.bar(xs, ys, width, label=a, color=colors.get(a))
    ax.set_yscale("log")
    ax.set_xticks(range(len(tests)))
    ax.set_xticklabels([LABELS.get(t, t).replace(" (", "\n(") for t in tests], fontsize=8)
    ax.set_ylabel("requests per app-CPU-second (log)")
    ax.set_title("TFB test types, one worker pinned to one CPU")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "chart.png"))


if __name__ == "__main__":
    main()
