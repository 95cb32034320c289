#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng VM booted from the gvt kernel flavour (the tree
# with patches/gvt applied; scripts/gvt-check.sh). There is no Intel GPU:
# i915 loads and binds nothing, which is enough to load kvmgt and exercise
# gmig's registration with it. Reports "GMIG-RESULT pass|fail <name>",
# then the guest's dmesg and "GMIG-VM-DONE".
# Usage: gvt-vm.sh OUTDIR (holding gmig.ko built against this kernel)
set -u
OUT=$1
KO=$OUT/gmig.ko
STATUS=/sys/kernel/debug/gmig/gvt

. "$(dirname "$0")/lib.sh"	# result, check
loaded() { grep -q "^$1 " /proc/modules; }
# mark NAME: puts a marker in the kernel log; said PATTERN: a line after the
# last marker matches.
MARK=
mark() { MARK=$1; echo "gmig-gvt-test: mark $1" >/dev/kmsg; }
said() { dmesg | sed -n "/gmig-gvt-test: mark $MARK\$/,\$p" | grep -q "$1"; }

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
dmesg -C
echo "gmig-gvt-vm: kernel $(uname -r), $(nproc) cpus"
modprobe mdev

# gmig without kvmgt: loads, says it runs the sim provider only.
sim_only() {
	! loaded kvmgt || { echo "kvmgt already loaded"; return 1; }
	mark sim-only
	insmod "$KO" || return 1
	said 'gmig: gvt provider not available' || { echo "no sim-only message"; dmesg | tail; return 1; }
	! said 'registered with kvmgt' || { echo "claims kvmgt"; return 1; }
	grep -qx 'kvmgt: unavailable' $STATUS || { cat $STATUS; return 1; }
	[ -d /sys/class/mdev_bus/gmig ] || { echo "no sim mdev parent"; return 1; }
	rmmod gmig
}
check gvt-gmig-without-kvmgt sim_only

# kvmgt and what it pulls in (i915, kvm, mdev, DRM helpers).
check gvt-modprobe-kvmgt modprobe kvmgt

register() {
	loaded kvmgt || return 1
	mark register
	insmod "$KO" || return 1
	said 'gmig: gvt provider registered with kvmgt' || { dmesg | tail; return 1; }
	grep -qx 'kvmgt: registered' $STATUS || { cat $STATUS; return 1; }
	grep -qx 'interface_version: 1' $STATUS || { cat $STATUS; return 1; }
	grep -qx 'vgpus: 0' $STATUS || { cat $STATUS; return 1; }
	# gmig holds kvmgt through the symbols it took.
	[ "$(cat /sys/module/kvmgt/refcnt)" -ge 1 ] || { echo "kvmgt refcnt $(cat /sys/module/kvmgt/refcnt)"; return 1; }
}
check gvt-gmig-registers register

# kvmgt cannot go while gmig holds it: rmmod fails cleanly, both stay.
kvmgt_refused() {
	mark refuse
	if rmmod kvmgt; then echo "rmmod kvmgt succeeded while gmig holds it"; return 1; fi
	loaded kvmgt && loaded gmig || { echo "a module went away"; return 1; }
	grep -qx 'kvmgt: registered' $STATUS || { cat $STATUS; return 1; }
}
check gvt-rmmod-kvmgt-refused kvmgt_refused

unload_in_order() {
	mark unload
	rmmod gmig || return 1
	said 'gmig: gvt provider unregistered from kvmgt' || { dmesg | tail; return 1; }
	[ "$(cat /sys/module/kvmgt/refcnt)" = 0 ] || { echo "kvmgt refcnt $(cat /sys/module/kvmgt/refcnt)"; return 1; }
	rmmod kvmgt || return 1
	! loaded kvmgt
}
check gvt-unload-gmig-then-kvmgt unload_in_order

# A second round: kvmgt takes a companion again after one unregistered.
again() {
	modprobe kvmgt || return 1
	mark again
	insmod "$KO" || return 1
	said 'gmig: gvt provider registered with kvmgt' || return 1
	rmmod gmig && rmmod kvmgt
}
check gvt-register-again again

dmesg >"$OUT/dmesg.log"
if grep -E 'BUG:|WARNING:|Oops|general protection|KASAN:|UBSAN:|possible (recursive|circular) locking|Call Trace:|kernel panic|rust_panic' "$OUT/dmesg.log" >"$OUT/splats.log"; then
	result fail gvt-dmesg-clean
	cat "$OUT/splats.log"
else
	result pass gvt-dmesg-clean
fi
echo "----- guest dmesg -----"
cat "$OUT/dmesg.log"
echo "GMIG-VM-DONE"
