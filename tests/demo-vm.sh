#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The guest half of `make demo`: a QEMU guest with a busy gmig vGPU is
# live-migrated twice, with software dirty pages (dirty=hash) and with the
# naive baseline (dirty=all), and the figures are shown side by side.
# Usage: demo-vm.sh KDIR
set -u
KDIR=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko"
echo "\$ insmod gmig.ko"
insmod "$ROOT/gmig.ko" || exit 1
dmesg | grep -E 'gmig' | sed 's/^/  /'
echo "\$ ls /sys/class/mdev_bus/gmig/mdev_supported_types/"
ls /sys/class/mdev_bus/gmig/mdev_supported_types/ | sed 's/^/  /'
for dirty in hash all; do
	echo
	echo "== live migration of a QEMU guest whose gmig vGPU runs the 'desktop' workload (precopy=oneshot dirty=$dirty)"
	bash "$ROOT/tests/gmig-migration.sh" "$KDIR" desktop oneshot $dirty >/tmp/demo-$dirty.log 2>&1
	rc=$?
	grep -E '^(window|destination:|gmig-migration)' /tmp/demo-$dirty.log | sed 's/^/  /'
	python3 - /tmp/demo-$dirty.log <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("migrate "):
        r = json.loads(line[len("migrate "):])
        print(f"  QEMU: status {r['status']}, downtime {r.get('downtime')} ms, "
              f"total {r.get('total-time')} ms, vfio state {r['vfio']['transferred']} bytes")
PY
	awk '/^--- source stats/ { s = 1; next } /^---/ { s = 0 }
		s && /^(pages_tracked|pages_hashed|pages_dirty_stopcopy|pages_sent_stopcopy|downtime_us|stopcopy_bytes):/ { printf "  gmig: %s\n", $0 }' /tmp/demo-$dirty.log
	[ $rc = 0 ] || echo "  (failed: see /tmp/demo-$dirty.log)"
done
rmmod gmig
