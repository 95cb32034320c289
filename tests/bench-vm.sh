#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng VM (scripts/bench.sh): loads gmig, runs
# gmig_bench, writes OUTDIR/results.txt and OUTDIR/results.json, then
# summarises the issue's targets per (working set, profile).
# Usage: bench-vm.sh KDIR OUTDIR [gmig_bench options]
set -u
KDIR=$1
OUT=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko"
grep -q '^gmig ' /proc/modules || insmod "$ROOT/gmig.ko" || { echo "insmod gmig failed"; echo GMIG-BENCH-DONE; exit 1; }
{
	echo "machine: $(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), QEMU TCG), $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), kernel $(uname -r)"
	echo "down_ms: device downtime measured by this program, STOP_COPY requested -> stop-copy report read and its pages copied -> last byte of device data read; k_down_ms: gmig's downtime_us (STOP_COPY entered -> last byte read), of which wait_ms (running context ends), rehash_ms (stop-copy re-hash), img_ms (final state image); down/cp = down_ms / one memcpy of the working set (memcpy_ms); pre_pgs: pages re-sent in pre-copy rounds; lost: pages that differ after migration"
	nice -n 5 "$OUT/bin/gmig_bench" -j "$OUT/results.json" "$@"
	echo "rc: $?"
} 2>&1 | tee "$OUT/results.raw"
# Targets: stop-copy pages >= 97 % fewer than naive; downtime <= 5 % of the
# memcpy and <= 1/10 of naive's.
python3 - "$OUT/results.json" >"$OUT/targets.txt" 2>&1 <<'PY' || true
import json, sys
rows = json.load(open(sys.argv[1]))
by = {}
for r in rows:
    by.setdefault((r["ws_mib"], r["profile"]), {})[r["variant"]] = r
print("targets (writeset vs naive; downtime vs one memcpy of the working set):")
for (ws, prof), v in sorted(by.items()):
    w, n = v.get("writeset"), v.get("naive")
    if not w:
        continue
    line = f"  {w['ws_bytes'] / 2**20:.1f} MiB {prof}:"
    if n and n["stopcopy_pages"]:
        red = 100.0 * (1 - w["stopcopy_pages"] / n["stopcopy_pages"])
        line += f" stop-copy pages {red:.1f}% fewer ({'met' if red >= 97 else 'MISSED by %.1f points' % (97 - red)});"
    ratio = 100.0 * w["downtime_ms"] / w["memcpy_ms"] if w["memcpy_ms"] else float("inf")
    line += f" downtime {ratio:.1f}% of memcpy ({'met' if ratio <= 5 else 'MISSED, %.1fx the 5%% bound' % (ratio / 5)});"
    if n and n["downtime_ms"]:
        f = n["downtime_ms"] / w["downtime_ms"] if w["downtime_ms"] else float("inf")
        line += f" naive/writeset downtime {f:.1f}x ({'met' if f >= 10 else 'MISSED'});"
    lost = sum(x["lost_pages"] for x in v.values())
    line += f" lost pages {lost}"
    print(line)
PY
cat "$OUT/targets.txt"
cat "$OUT/results.raw" "$OUT/targets.txt" >"$OUT/results.txt"
echo GMIG-BENCH-DONE
