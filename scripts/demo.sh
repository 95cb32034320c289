#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: build everything (reusing the caches), boot the test kernel
# under virtme-ng and show gmig at work inside it.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$GMIG_ROOT"
scripts/kernel.sh
make -s modules
KDIR=$(scripts/kernel.sh --print-kdir)
echo "== booting $(basename "$KDIR") under virtme-ng (TCG)"
exec timeout "${VM_TIMEOUT:-1200}" "$VNG" --run "$KDIR/arch/x86/boot/bzImage" \
	--disable-kvm --disable-microvm --memory 2G --cpus 2 --rodir "$GMIG_CACHE" \
	--exec "bash $GMIG_ROOT/tests/demo-vm.sh $KDIR" </dev/null
