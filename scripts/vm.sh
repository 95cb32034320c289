#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the cached test kernel under virtme-ng (TCG) and run one command in
# it, for working on a single test:
#   scripts/vm.sh 'bash tests/qemu-paths.sh $KDIR cancel'
# The command runs from the repository root with KDIR set to the kernel
# tree and OUT to a writable output directory (GMIG_OUT, default ./out/vm).
# VM_APPEND adds kernel parameters (e.g. kunit.enable=0: gmig's KUnit
# suites do not run at insmod).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$GMIG_ROOT"
KDIR=$(scripts/kernel.sh --print-kdir)
OUT=${GMIG_OUT:-$GMIG_ROOT/out/vm}
mkdir -p "$OUT"
exec flock "$VM_LOCK" timeout "${VM_TIMEOUT:-1800}" "$VNG" --run "$KDIR/arch/x86/boot/bzImage" \
	--disable-kvm --disable-microvm --memory "${VM_MEMORY:-2G}" --cpus 2 \
	${VM_APPEND:+--append "$VM_APPEND"} \
	--rodir "$GMIG_CACHE" --rwdir "$OUT" \
	--exec "cd $GMIG_ROOT && export KDIR=$KDIR OUT=$OUT && mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug; $*" </dev/null
