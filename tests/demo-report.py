#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tabulates what tests/demo-vm.sh measured (scripts/demo.sh runs it).

  demo-report.py DIR
reads DIR/<precopy>-<dirty>/{run.log,src.trace,memcpy.txt}, prints the
table, writes DIR/results.json and DIR/pages-per-round.png. Exits non-zero
when a variant did not complete or its memory differs.
"""
import json
import os
import re
import sys

VARIANTS = [("oneshot", "hash"), ("iterative", "hash"), ("iterative", "all")]
PAGE = 4096


def stats_of(log, section):
    """key: value lines of one '--- <section> stats' block of run.log."""
    out, inside = {}, False
    for line in log.splitlines():
        if line.startswith("--- "):
            inside = line.startswith(f"--- {section} stats")
            continue
        m = re.match(r"^([a-z_]+): (-?\d+)$", line)
        if inside and m:
            out[m.group(1)] = int(m.group(2))
    return out


def rounds_of(trace_path):
    """Device-dirty pages QEMU pulled per dirty sync, from its trace.

    One sync reads the device's log section by section in ascending IOVA
    order, so a read at a lower IOVA than the previous one starts a sync.
    """
    rounds, last = [], None
    if not os.path.exists(trace_path):
        return rounds
    for line in open(trace_path, errors="replace"):
        m = re.search(r"vfio_get_dirty_bitmap .*iova=0x([0-9a-f]+).*dirty_pages=(\d+)", line)
        if not m:
            continue
        iova, pages = int(m.group(1), 16), int(m.group(2))
        if last is None or iova <= last:
            rounds.append(0)
        rounds[-1] += pages
        last = iova
    return rounds


def variant(d, precopy, dirty):
    path = os.path.join(d, f"{precopy}-{dirty}")
    log = open(os.path.join(path, "run.log"), errors="replace").read()
    mig = {}
    for line in log.splitlines():
        if line.startswith("migrate "):
            mig = json.loads(line[len("migrate "):])
    win = re.search(r"window sha256: source (\w+) destination (\w+)", log)
    rc = re.search(r"^rc: (\d+)", log, re.M)
    src = stats_of(log, "source")
    rounds = rounds_of(os.path.join(path, "src.trace"))
    memcpy = None
    mpath = os.path.join(path, "memcpy.txt")
    if os.path.exists(mpath):
        m = re.search(r"memcpy_us: (\d+)", open(mpath).read())
        memcpy = int(m.group(1)) if m else None
    pages = src.get("pages_sent_stopcopy", 0)
    return {
        "variant": f"{precopy}/{dirty}",
        "completed": mig.get("status") == "completed" and rc is not None and rc.group(1) == "0",
        # Pre-copy dirty syncs: every sync QEMU made but the final one.
        "precopy_rounds": max(len(rounds) - 1, 0),
        "stopcopy_pages": pages,
        # GPU pages QEMU re-sent in stop-copy plus the vGPU state image.
        "stopcopy_bytes": pages * PAGE + src.get("stopcopy_bytes", 0),
        "downtime_us": src.get("downtime_us", 0),
        "qemu_downtime_ms": mig.get("downtime"),
        "total_ms": mig.get("total-time"),
        "identical": bool(win) and win.group(1) == win.group(2),
        "memcpy_us": memcpy,
        "pages_tracked": src.get("pages_tracked", 0),
        "pages_per_round": rounds,
    }


def plot(results, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: plot not written)")
        return
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for r in results:
        ys = r["pages_per_round"]
        if not ys:
            continue
        xs = list(range(1, len(ys) + 1))
        ax.plot(xs, ys, marker="o", label=r["variant"])
        ax.annotate("stop-copy", (xs[-1], ys[-1]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_xlabel("dirty sync (QEMU round); the last one is stop-copy")
    ax.set_ylabel("GPU pages reported dirty (sent)")
    ax.set_title("gmig: GPU pages sent per round, 'game' workload")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    print(f"plot: {png}")


def main(d):
    results = [variant(d, p, s) for p, s in VARIANTS]
    hdr = ("variant", "pre-copy rounds", "stop-copy pages", "stop-copy bytes",
           "device downtime", "QEMU downtime", "total", "identical")
    rows = [(r["variant"], str(r["precopy_rounds"]), str(r["stopcopy_pages"]),
             str(r["stopcopy_bytes"]), f"{r['downtime_us']} us",
             f"{r['qemu_downtime_ms']} ms", f"{r['total_ms']} ms",
             "yes" if r["identical"] and r["completed"] else "NO") for r in results]
    w = [max(len(x) for x in col) for col in zip(hdr, *rows)]
    for row in (hdr, *rows):
        print("  ".join(c.ljust(n) for c, n in zip(row, w)))
    base, best = results[-1], results[0]
    if base["stopcopy_pages"]:
        fewer = 100.0 * (1 - best["stopcopy_pages"] / base["stopcopy_pages"])
        print(f"oneshot/hash sends {fewer:.1f} % fewer GPU pages in stop-copy than the naive baseline"
              f" ({best['stopcopy_pages']} vs {base['stopcopy_pages']}; gMig reports 80 %)")
    if base["downtime_us"] and best["downtime_us"]:
        print(f"device downtime: {best['downtime_us']} us vs {base['downtime_us']} us naive"
              f" ({base['downtime_us'] / best['downtime_us']:.1f}x less)")
    if best["memcpy_us"]:
        print(f"memcpy of the {best['pages_tracked']} tracked pages in this VM: {best['memcpy_us']} us;"
              f" oneshot/hash device downtime is {100.0 * best['downtime_us'] / best['memcpy_us']:.0f} % of it")
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"results: {os.path.join(d, 'results.json')}")
    plot(results, os.path.join(d, "pages-per-round.png"))
    return 0 if all(r["completed"] and r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
