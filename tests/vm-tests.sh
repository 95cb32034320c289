#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng VM booted from the cached test kernel. Loads
# gmig.ko (its KUnit suites run at load), runs the kselftests and the
# end-to-end QEMU tests (on gmig's sim vGPUs, then on gvt_mock's vGPUs
# through gmig's gvt provider), and reports every result as a line
#   GMIG-RESULT pass|fail|skip <name>
# followed by the guest's dmesg and a final "GMIG-VM-DONE" marker. The host
# side (scripts/check.sh) decides pass/fail from these lines only.
# Usage: vm-tests.sh KDIR OUTDIR
set -u
KDIR=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)

. "$ROOT/tests/lib.sh"	# result, check, vgpu_load
# The e2e runs are the sim's unless the gvt section below says otherwise.
unset GMIG_PROVIDER

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
dmesg -C
echo "gmig-vm: kernel $(uname -r), $(nproc) cpus"

# Modules gmig depends on (mdev is a module in the test config).
grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko"

check module-load insmod "$ROOT/gmig.ko"

# KUnit suites ran during insmod; take their KTAP lines from the log.
# Subtests are the indented "ok N name" lines.
dmesg >"$OUT/kunit.log"
grep -E '^\[[^]]*\] +(not )?ok [0-9]+ ' "$OUT/kunit.log" | sed -E 's/^\[[^]]*\] ?//' >"$OUT/kunit.tap"
[ -s "$OUT/kunit.tap" ] || result fail kunit-ran
while IFS= read -r line; do
	indent=${line%%[! ]*}
	[ ${#indent} -ge 4 ] || continue	# suite summary line
	name=$(echo "$line" | sed -E 's/^ *(not )?ok [0-9]+ ([^ #]+).*/\2/')
	case "$line" in
	*"# SKIP"*) result skip "kunit:$name" ;;
	*"not ok"*) result fail "kunit:$name" ;;
	*) result pass "kunit:$name" ;;
	esac
done <"$OUT/kunit.tap"

# kselftests (TAP from kselftest_harness.h): one result per test case.
for t in "$OUT"/selftests/*_test; do
	[ -x "$t" ] || continue
	base=$(basename "$t")
	"$t" >"$OUT/$base.tap" 2>&1
	rc=$?
	sed 's/^/    /' "$OUT/$base.tap"
	n=0
	while read -r line; do
		n=$((n + 1))
		name=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ ([^#]*).*/\2/' | sed 's/ *$//; s/ /_/g')
		case "$line" in
		*"# SKIP"*) result skip "$base:$name" ;;
		"not ok"*) result fail "$base:$name" ;;
		*) result pass "$base:$name" ;;
		esac
	done < <(grep -E '^(not )?ok [0-9]+ ' "$OUT/$base.tap")
	[ $n -gt 0 ] || result fail "$base:no-tap-output(rc=$rc)"
done

# The userspace sample, as a user would run it.
if [ -x "$OUT/samples/gmig_submit" ]; then
	U=5a1d0000-0000-4000-8000-0000000000c1
	echo $U >/sys/class/mdev_bus/gmig/mdev_supported_types/gmig-small/create
	check sample-gmig-submit "$OUT/samples/gmig_submit" $U
	echo 1 >/sys/bus/mdev/devices/$U/remove
fi

# mdevctl, as an operator would use it: list the types, start a transient
# vGPU, define/start/stop/undefine a persistent one.
mdevctl_flow() {
	local u=5a1d0000-0000-4000-8000-0000000000d1
	mdevctl types | grep -q gmig-small || { echo "mdevctl types: no gmig-small"; return 1; }
	mdevctl start -u $u -p gmig -t gmig-small || return 1
	mdevctl list | grep "$u" | grep -q gmig-small || { echo "not listed"; return 1; }
	[ -e /sys/bus/mdev/devices/$u/vfio-dev ] || { echo "no vfio device"; return 1; }
	mdevctl stop -u $u || return 1
	[ ! -e /sys/bus/mdev/devices/$u ] || { echo "still present after stop"; return 1; }
	mdevctl define -u $u -p gmig -t gmig-large || return 1
	mdevctl list --defined | grep "$u" | grep -q gmig-large || { echo "not defined"; return 1; }
	mdevctl start -u $u || return 1
	grep -q '^type: gmig-large' /sys/kernel/debug/gmig/$u/stats || { echo "wrong type"; return 1; }
	mdevctl stop -u $u && mdevctl undefine -u $u || return 1
	[ ! -e /sys/bus/mdev/devices/$u ]
}
if command -v mdevctl >/dev/null; then
	check mdevctl mdevctl_flow
else
	result fail mdevctl	# scripts/setup.sh installs it
fi

# e2e_figures NAME VARIANT: from the log of the tests/gmig-migration.sh run
# NAME, QEMU's migrate and window lines and gmig's page figures and device
# downtime on the source, labelled VARIANT.
e2e_figures() {
	grep -E '^(migrate|window)' "$OUT/$1.log" | cut -c1-160 | sed 's/^/    /'
	awk -v v="$2" '/^--- source stats/ { src = 1 } /^--- destination/ { src = 0 }
		src && /^(pages_tracked|pages_dirty_stopcopy|pages_sent_stopcopy|pages_rehashed_stopcopy|rehash_stopcopy_us|downtime_us):/ { s = s " " $0 }
		END { print "    figures " v ":" s }' "$OUT/$1.log"
}
# The scenarios of tests/qemu-paths.sh, for both providers.
QEMU_PATHS="autostart iommufd file cancel dst-killed src-killed multifd no-devlog no-precopy-log auto reset back"

# End to end with QEMU 10: the gmig sim vGPU (busy) under each policy, side
# by side, then the kernel's mtty sample as the known-good reference.
for v in "oneshot hash" "oneshot all" "iterative hash"; do
	set -- $v
	check "e2e-gmig-qemu-migration-$1-$2" bash "$ROOT/tests/gmig-migration.sh" "$KDIR" desktop "$1" "$2"
	e2e_figures "e2e-gmig-qemu-migration-$1-$2" "$1/$2"
done
# Real GPU work under QEMU: Mesa's iris command streams captured on the
# host (trace/workloads.sh packs them into $GMIG_REPLAY_DIR/NAME/
# capture.replay) replayed as the sim vGPU's guest workload during a
# migration, with the write-set re-hash and with gMig's full one (same
# run: their downtimes are the figures of Documentation/benchmarks.rst,
# "Replayed under QEMU"). A page the analysis misses fails the window
# check or the replay's witness (replay_unnamed_pages).
# REPLAY_TEST names the test (default e2e-replay: the sim's); the
# arguments after the re-hash mode are the run's environment.
replay_e2e() {
	local name=$1 rehash=$2 file=${GMIG_REPLAY_DIR:-}/$1/capture.replay
	local t=${REPLAY_TEST:-e2e-replay}-$1-$2
	shift 2
	if [ ! -f "$file" ]; then
		result skip "$t"
		return
	fi
	check "$t" env GMIG_REPLAY="$file" GMIG_REHASH=$rehash "$@" \
		bash "$ROOT/tests/gmig-migration.sh" "$KDIR" replay oneshot hash
	e2e_figures "$t" "${REPLAY_TEST:-replay} $name rehash=$rehash"
}
for r in writeset all; do
	# Both rewrite their render targets with every execbuffer, so their
	# pre-copy may not converge under TCG and a switchover is forced:
	# glmark2-desktop's after 60 s (its pages are dirtied about as fast
	# as QEMU sends them, 4 MB/s, only in the debug kernel; the base
	# kernel converges within seconds), glmark2-game's after 8 s (in
	# every kernel). glmark2-game also needs a larger window: 82 MiB of
	# pages.
	replay_e2e glmark2-desktop $r GMIG_CONVERGE_AFTER=60
	replay_e2e glmark2-game $r GMIG_REPLAY_MB=84 GMIG_CONVERGE_AFTER=8
done
replay_e2e gmig-compute writeset
echo writeset >/sys/module/gmig/parameters/rehash 2>/dev/null

# The other paths QEMU takes through the uAPI (tests/qemu-paths.sh).
for p in $QEMU_PATHS; do
	check "e2e-qemu-path-$p" bash "$ROOT/tests/qemu-paths.sh" "$KDIR" "$p"
done
check e2e-mtty-qemu-migration bash "$ROOT/tests/mtty-migration.sh" "$KDIR"

# The operators' path: two libvirt hosts, virsh migrate --live both ways,
# save/restore, managedsave/start, an aborted migration then a completed one
# (tests/libvirt-migration.sh); make check LIBVIRT=0 skips it.
if [ "${GMIG_LIBVIRT:-1}" = 1 ]; then
	bash "$ROOT/tests/libvirt-migration.sh" "$KDIR" "$OUT"
fi

# gmig's gvt provider against a mock kvmgt (tests/gvt-mock): unloads gmig,
# loads the mock and gmig, migrates between two mock vGPUs, unloads both and
# loads gmig again.
bash "$ROOT/tests/gvt-mock.sh" "$KDIR" "$OUT"

# End to end with QEMU 10 on gmig's gvt provider (GMIG_GVT_QEMU=0 skips
# it): QEMU opens the mdev vGPUs gvt_mock.ko registers as kvmgt would (type
# gvt_mock-GVTg_V5_8, two vGPUs at different GGTT partitions), the mock's
# stand-in guest driver runs the desktop workload, and gmig's gvt provider
# migrates them. tests/gmig-migration.sh (oneshot/hash) and every
# tests/qemu-paths.sh scenario run with GMIG_PROVIDER=gvt (tests/lib.sh)
# and the same checks as on the sim, as e2e-gvt-qemu-*.
if [ "${GMIG_GVT_QEMU:-1}" = 1 ]; then
	gvt_ko=${GVT_MOCK_KO:-$OUT/gvt-mock/gvt_mock.ko}
	# gvt-mock.sh left gmig loaded alone (if it was): gmig looks the
	# companion interface up (symbol_get) only at load, so gmig goes out,
	# the mock in, and gmig in again after it (vgpu_load).
	gmig_was_loaded=
	grep -q '^gmig ' /proc/modules && gmig_was_loaded=1
	gvt_load() {
		GMIG_PROVIDER=gvt GVT_MOCK_KO=$gvt_ko vgpu_load "$KDIR" "$ROOT" || return 1
		grep -q '^gvt_mock ' /proc/modules
	}
	check e2e-gvt-load gvt_load
	check e2e-gvt-qemu-migration-oneshot-hash env GMIG_PROVIDER=gvt GVT_MOCK_KO="$gvt_ko" \
		bash "$ROOT/tests/gmig-migration.sh" "$KDIR" desktop oneshot hash
	e2e_figures e2e-gvt-qemu-migration-oneshot-hash gvt/oneshot/hash
	for p in $QEMU_PATHS; do
		check "e2e-gvt-qemu-path-$p" env GMIG_PROVIDER=gvt GVT_MOCK_KO="$gvt_ko" \
			bash "$ROOT/tests/qemu-paths.sh" "$KDIR" "$p"
	done
	# The captured Mesa workloads as the mock's stand-in guest driver's
	# workload (its replay driver, tests/gvt-mock/kvmgt_replay.c): PPGTT batches
	# through GVT-g's scanner (scan_nonprivbb on every engine), the pages
	# behind the PPGTT pinned by its shadow, the model GPU's writes seen
	# by no hook; the window check fails on a page gmig misses. The
	# switchover is forced after 8 s of pre-copy, as on the sim: the
	# replay keeps rewriting its render targets.
	for r in writeset all; do
		REPLAY_TEST=e2e-gvt-replay replay_e2e glmark2-desktop $r \
			GMIG_PROVIDER=gvt GVT_MOCK_KO="$gvt_ko" GMIG_CONVERGE_AFTER=8
		REPLAY_TEST=e2e-gvt-replay replay_e2e glmark2-game $r \
			GMIG_PROVIDER=gvt GVT_MOCK_KO="$gvt_ko" GMIG_REPLAY_MB=84 \
			GMIG_CONVERGE_AFTER=8
	done
	# GVT-g's default: no PPGTT batch scanned (scan_nonprivbb 0 on the
	# vGPUs created now). gmig then counts what each workload's PPGTT
	# maps; before, it counted nothing and lost the batches' pages.
	if echo 0 >/sys/module/gvt_mock/parameters/scan_nonprivbb; then
		REPLAY_TEST=e2e-gvt-replay-noscan replay_e2e glmark2-desktop writeset \
			GMIG_PROVIDER=gvt GVT_MOCK_KO="$gvt_ko" GMIG_CONVERGE_AFTER=8
		echo 7 >/sys/module/gvt_mock/parameters/scan_nonprivbb
	else
		result fail e2e-gvt-replay-noscan-glmark2-desktop-writeset
	fi
	echo writeset >/sys/module/gmig/parameters/rehash 2>/dev/null
	# Both modules out (gmig first: it holds the mock), then gmig alone
	# again if it was loaded before, so that module-unload and
	# kernel-bench find it as before.
	gvt_unload() {
		if grep -q '^gmig ' /proc/modules; then rmmod gmig || return 1; fi
		if grep -q '^gvt_mock ' /proc/modules; then rmmod gvt_mock || return 1; fi
		[ -z "$gmig_was_loaded" ] || insmod "$ROOT/gmig.ko"
	}
	check e2e-gvt-unload gvt_unload
fi

check module-unload rmmod gmig

# The kernel's page_hash against a page-to-page copy (a figure, not a
# target: TCG emulates the hash's 64x64->128 multiply in software).
kbench() {
	insmod "$ROOT/gmig.ko" bench=1 || return 1
	dmesg | grep 'gmig: bench: ' | tail -1
	rmmod gmig
	dmesg | grep 'gmig: bench: ' | tail -1 | grep -q 'median [0-9]* %'
}
check kernel-bench kbench
sed 's/^.*gmig: bench: /    /' "$OUT/kernel-bench.log" | cut -c1-200

# Debug kernels: ask kmemleak now (its own scan may not have run yet) and
# fail on any leak whose backtrace goes through gmig, gvt_mock, vfio or mdev.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >"$OUT/kmemleak.log"
	if grep -qE 'gmig|gvt_mock|vfio|mdev' "$OUT/kmemleak.log"; then
		result fail kmemleak-clean
		head -60 "$OUT/kmemleak.log"
	else
		result pass kmemleak-clean
	fi
fi

# Nothing the kernel said may be a splat.
dmesg >"$OUT/dmesg.log"
if grep -E 'BUG:|WARNING:|Oops|general protection|KASAN:|UBSAN:|possible (recursive|circular) locking|unreferenced object|Call Trace:|kernel panic|rust_panic' "$OUT/dmesg.log" >"$OUT/splats.log"; then
	result fail dmesg-clean
	cat "$OUT/splats.log"
else
	result pass dmesg-clean
fi
echo "----- guest dmesg -----"
cat "$OUT/dmesg.log"
echo "GMIG-VM-DONE"
