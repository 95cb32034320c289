#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# gvt provider CI (kernel/gvt.config names it): needs the gvt kernel flavour
# (make gvt-kernel), i.e. the tree with patches/gvt applied.
#   1. gmig's copy of the companion header equals the patched tree's;
#   2. gmig.ko built against the gvt tree (warnings are errors), in a
#      temporary copy of the repository so ./gmig.ko (base flavour) stays;
#      the module goes to $OUT/gvt/gmig.ko;
#   3. boot the gvt kernel under virtme-ng (TCG) and run tests/gvt-vm.sh:
#      gmig without kvmgt (sim only), modprobe kvmgt, gmig registers with
#      it, rmmod kvmgt refused while gmig holds it, unload in order, reload.
# Prints "GMIG-RESULT pass|fail <name>" per test and "N passed, N failed";
# exit status 0 only if nothing failed and the VM finished.
# Usage: scripts/gvt-check.sh   (OUT=GMIG_OUT, default ./out)
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$GMIG_ROOT"

OUT=${GMIG_OUT:-$GMIG_ROOT/out}/gvt
rm -rf "$OUT" && mkdir -p "$OUT"
KDIR=$(FLAVOUR=gvt scripts/kernel.sh --print-kdir)
SRC=$GMIG_CACHE/src/linux-$KVER_MAJOR-gvt
passed=0 failed=0
result() {
	echo "GMIG-RESULT $1 $2"
	if [ "$1" = pass ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
finish() {
	echo "gvt: $passed passed, $failed failed"
	[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
	exit
}

# A series changed since the cached build: re-apply it and rebuild what it
# touches (incremental; kernel.sh restores and touches only those files).
if [ -f "$KDIR/.gmig-built" ]; then
	FLAVOUR=gvt scripts/kernel.sh >"$OUT/kernel.log" 2>&1 ||
		{ tail -20 "$OUT/kernel.log"; result fail gvt-kernel-built; finish; }
fi
if [ ! -f "$KDIR/.gmig-built" ]; then
	echo "gvt kernel not built ($KDIR): make gvt-kernel"
	result fail gvt-kernel-built
	finish
fi

# 1. The shim's copy of the interface is the series' header, byte for byte.
if cmp -s rust/gvt/intel_gvt_companion.h "$SRC/include/drm/intel/intel_gvt_companion.h"; then
	result pass gvt-header-copy
else
	diff -u rust/gvt/intel_gvt_companion.h "$SRC/include/drm/intel/intel_gvt_companion.h" | head -40
	result fail gvt-header-copy
fi

# 2. gmig.ko against the gvt tree, out of a temporary copy.
tmp=$(mktemp -d /tmp/gmig-gvt.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tar -cf - --exclude=rust/gmig_core/target --exclude=rust/gmig_core/fuzz \
	Kbuild Makefile rust shim | tar -C "$tmp" -xf -
# shellcheck disable=SC2046
if (source scripts/env.sh && make -C "$KDIR" M="$tmp" $(cat "$KDIR/.gmig-make-vars") W=1 modules) \
	>"$OUT/module-build.log" 2>&1 && [ -f "$tmp/gmig.ko" ] &&
	! grep -qE 'warning|error' "$OUT/module-build.log"; then
	cp "$tmp/gmig.ko" "$OUT/gmig.ko"
	result pass gvt-module-build
	echo "    $OUT/gmig.ko ($(stat -c %s "$OUT/gmig.ko") bytes)"
else
	sed 's/^/    /' "$OUT/module-build.log" | tail -40
	result fail gvt-module-build
	finish
fi

# 3. In the VM. --run on the build directory makes virtme-ng install the
# tree's modules, so modprobe finds kvmgt, i915, kvm and mdev.
vmlog=$OUT/vm.log
flock "$VM_LOCK" timeout "${VM_TIMEOUT:-900}" "$VNG" --run "$KDIR" \
	--disable-kvm --disable-microvm --memory 2G --cpus 2 --rodir "$GMIG_CACHE" \
	--rwdir "$OUT" --exec "bash $GMIG_ROOT/tests/gvt-vm.sh $OUT" \
	</dev/null >"$vmlog" 2>&1
vmrc=$?
grep -E '^GMIG-RESULT|^    ' "$vmlog"
while read -r _ status _; do
	if [ "$status" = pass ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done < <(grep -E '^GMIG-RESULT ' "$vmlog")
if ! grep -q '^GMIG-VM-DONE' "$vmlog"; then
	tail -40 "$vmlog"
	echo "vm did not finish (vng rc=$vmrc)"
	failed=$((failed + 1))
fi
finish
