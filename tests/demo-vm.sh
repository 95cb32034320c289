#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The guest half of `make demo`: a QEMU guest whose gmig vGPU runs the
# 3D-game-like workload is live-migrated three times, with
#   oneshot/hash    gMig: one-shot pre-copy, software dirty pages by hashing
#   iterative/hash  classic iterative pre-copy, software dirty pages
#   iterative/all   the naive baseline: every GPU page dirty every round
# Each run's log, QEMU dirty-bitmap trace and gmig stats go to
# OUTDIR/<precopy>-<dirty>/ for scripts/demo.sh to tabulate, with the time
# this VM takes to memcpy the tracked working set once.
# Usage: demo-vm.sh KDIR OUTDIR
set -u
KDIR=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=${GMIG_DEMO_PROFILE:-game}
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko"
echo "\$ insmod gmig.ko"
insmod "$ROOT/gmig.ko" || exit 1
dmesg | grep -E '^\[[^]]*\] (gmig|    ok|ok)' | sed 's/^\[[^]]*\] /  /' | head -6
echo "\$ ls /sys/class/mdev_bus/gmig/mdev_supported_types/"
ls /sys/class/mdev_bus/gmig/mdev_supported_types/ | sed 's/^/  /'
for v in "oneshot hash" "iterative hash" "iterative all"; do
	set -- $v
	d=$OUT/$1-$2
	mkdir -p "$d"
	echo
	echo "== live migration, '$PROFILE' workload, precopy=$1 dirty=$2"
	# A variant whose pre-copy does not converge is switched over after
	# 60 s, as an operator would (the table then shows its downtime).
	GMIG_CONVERGE_AFTER=60 bash "$ROOT/tests/gmig-migration.sh" "$KDIR" "$PROFILE" "$1" "$2" \
		>"$d/run.log" 2>&1
	echo "rc: $?" >>"$d/run.log"
	cp /tmp/gmig-e2e-$1-$2/src.trace "$d/" 2>/dev/null
	grep -E '^(window|dirty pages|destination:|gmig-migration|forced)' "$d/run.log" | sed 's/^/  /'
	tracked=$(awk '/^--- source stats/ { s = 1 } s && /^pages_tracked:/ { print $2; exit }' "$d/run.log")
	[ "${tracked:-0}" -gt 0 ] && "$OUT/memcpy-bench" $((tracked * 4096)) >"$d/memcpy.txt"
done
rmmod gmig
