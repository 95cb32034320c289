#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: build everything (reusing the caches), boot the test kernel
# under virtme-ng, live-migrate a busy vGPU under three policies inside it,
# and print the measured table. Writes build/demo/results.json and
# build/demo/pages-per-round.png (every figure measured in this run).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$GMIG_ROOT"
scripts/kernel.sh
make -s modules
KDIR=$(scripts/kernel.sh --print-kdir)
OUT=$GMIG_ROOT/build/demo
rm -rf "$OUT" && mkdir -p "$OUT"
gcc -O2 -Wall -Werror -o "$OUT/memcpy-bench" tests/memcpy-bench.c
echo "== booting $(basename "$KDIR") under virtme-ng (TCG)"
flock "$VM_LOCK" timeout "${VM_TIMEOUT:-1800}" "$VNG" --run "$KDIR/arch/x86/boot/bzImage" \
	--disable-kvm --disable-microvm --memory 2G --cpus 2 --rodir "$GMIG_CACHE" \
	--rwdir "$OUT" --exec "bash $GMIG_ROOT/tests/demo-vm.sh $KDIR $OUT" </dev/null
echo
python3 tests/demo-report.py "$OUT"
