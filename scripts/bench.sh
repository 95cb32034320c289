#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel-side migration benchmark: boots the test kernel under
# virtme-ng (TCG) and runs selftests/gmig_bench inside it (no QEMU guest:
# the program is the VMM). Writes out/bench/results.txt (the table, the
# machine, the targets) and out/bench/results.json. Long; not part of
# `make check`.
#   scripts/bench.sh [gmig_bench options]   e.g. -s 64,256 -p game -r 3 -c 1,3,7
# (-H reps: hashing=inplace against hashing=copy in the same run, default 7,
# -H 0 skips it; -M MiB its working set, default 64)
# (-g N: a stale pre-copy base with and without new initial data, REINIT,
# N runs each; default 0)
# (the concurrent runs: -c counts of gmig-small vGPUs, -m MiB each, -S own,sync;
# -c 0 skips them).
# Environment: BENCH_MEMORY (VM memory, default 4G: 1 GiB working sets
# need two 1 GiB "guest RAMs" plus the kernel), BENCH_CPUS (default 2),
# BENCH_TIMEOUT (seconds, default 5400).
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$GMIG_ROOT"

OUT=${GMIG_OUT:-$GMIG_ROOT/out}/bench
rm -rf "$OUT" && mkdir -p "$OUT"
scripts/kernel.sh || exit 1
KDIR=$(scripts/kernel.sh --print-kdir)
make -s modules >"$OUT/module-build.log" 2>&1 || { cat "$OUT/module-build.log"; exit 1; }
make -s -C selftests KSRC="$KSRC" KDIR="$KDIR" OUTPUT="$OUT/bin" bench \
	>"$OUT/bench-build.log" 2>&1 || { cat "$OUT/bench-build.log"; exit 1; }

echo "== booting $(basename "$KDIR") under virtme-ng (TCG, ${BENCH_CPUS:-2} vCPUs, ${BENCH_MEMORY:-4G})"
flock "$VM_LOCK" timeout "${BENCH_TIMEOUT:-5400}" "$VNG" --run "$KDIR/arch/x86/boot/bzImage" \
	--disable-kvm --disable-microvm --memory "${BENCH_MEMORY:-4G}" --cpus "${BENCH_CPUS:-2}" \
	--rodir "$GMIG_CACHE" --rwdir "$OUT" \
	--exec "bash $GMIG_ROOT/tests/bench-vm.sh $KDIR $OUT $*" </dev/null >"$OUT/vm.log" 2>&1
rc=$?
grep -q '^GMIG-BENCH-DONE' "$OUT/vm.log" || { tail -40 "$OUT/vm.log"; echo "bench: the VM did not finish (vng rc=$rc)"; exit 1; }
[ -s "$OUT/results.txt" ] || { tail -40 "$OUT/vm.log"; echo "bench: no results"; exit 1; }
cat "$OUT/results.txt"
grep -q '^gmig_bench: done' "$OUT/results.txt"
