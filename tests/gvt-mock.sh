#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng VM booted from the base test kernel (no i915,
# no kvmgt, no Intel GPU): gmig's gvt provider against gvt_mock.ko
# (tests/gvt-mock), a mock of kvmgt's companion interface. gmig registers
# with the mock as it would with kvmgt; the mock's debugfs "run" file then
# drives a whole migration between two mock vGPUs through gmig. Reports
# "GMIG-RESULT pass|fail|skip gvt-mock:<step>" for every step the mock
# logs, and the load/unload checks around them.
#
# If gmig is loaded on entry (tests/vm-tests.sh), it is unloaded first and
# loaded again at the end, so later tests find it as before.
# Usage: gvt-mock.sh KDIR OUTDIR
#   gvt_mock.ko is taken from $GVT_MOCK_KO, default OUTDIR/gvt-mock/ (where
#   scripts/check.sh builds it); gmig.ko from $GMIG_KO, default the
#   repository root.
set -u
KDIR=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KO=${GMIG_KO:-$ROOT/gmig.ko}
MOCK=${GVT_MOCK_KO:-$OUT/gvt-mock/gvt_mock.ko}
RUN=/sys/kernel/debug/gvt_mock/run

. "$ROOT/tests/lib.sh"	# result
loaded() { grep -q "^$1 " /proc/modules; }
# mark NAME: puts a marker in the kernel log; since NAME: the log after it.
mark() { echo "gmig-gvt-mock: mark $1" >/dev/kmsg; }
since() { dmesg | sed -n "/gmig-gvt-mock: mark $1\$/,\$p"; }
# mcheck STEP COMMAND...: check, as gvt-mock:STEP.
mcheck() { local step=$1; shift; check "gvt-mock:$step" "$@"; }

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko"
mark start

reload=
if loaded gmig; then
	reload=1
	mcheck rmmod-gmig rmmod gmig
fi

if [ ! -f "$MOCK" ]; then
	result fail gvt-mock:load
	echo "    $MOCK not built"
	exit 0
fi
mcheck load insmod "$MOCK"

register() {
	mark register
	insmod "$KO" || return 1
	since register | grep -q 'gmig: gvt provider registered with kvmgt' ||
		{ since register; return 1; }
	since register | grep -q 'gvt_mock: companion registered' ||
		{ since register; return 1; }
}
mcheck gmig-registers register

# run_type TYPE [LABEL [LIMIT]]: the scenario between two mock vGPUs of TYPE
# (the mock's "1", or "v5_1": GVT-g's largest type, 7 MiB images), or what
# else TYPE asks the mock ("hostile SEED SECS"). It runs in the writer's
# context; the write fails (EIO) if a step failed. A companion that
# deadlocks would hang it: bounded by LIMIT seconds (300).
run_type() {
	local type=$1 label=gvt-mock${2:+:$2} log=$OUT/gvt-mock-run${2:+-$2}
	mark "run-${2:-$type}"
	timeout "${3:-300}" bash -c "echo '$type' >$RUN" 2>"$log.err"
	rc=$?
	since "run-${2:-$type}" >"$log.log"
	steps=0 bad=0
	while IFS= read -r line; do
		case "$line" in
		*"gvt_mock: ok "*)
			result pass "gvt-mock:${line##*gvt_mock: ok }"
			steps=$((steps + 1)) ;;
		*"gvt_mock: skip "*)
			result skip "gvt-mock:${line##*gvt_mock: skip }"
			steps=$((steps + 1)) ;;
		*"gvt_mock: FAIL "*)
			step=${line##*gvt_mock: FAIL }
			result fail "gvt-mock:${step%%: *}"
			echo "    ${step#*: }"
			steps=$((steps + 1)) bad=1 ;;
		esac
	done < <(sed -E 's/^\[[^]]*\] ?//' "$log.log")
	if [ "$steps" = 0 ]; then
		result fail "$label:ran"
		sed 's/^/    /' "$log.err" "$log.log" | tail -40
	elif [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		result fail "$label:run-status"
		echo "    write of $RUN: rc $rc, but no step failed"
	elif [ "$rc" = 0 ] && [ "$bad" = 1 ]; then
		result fail "$label:run-status"
		echo "    write of $RUN succeeded, but a step failed"
	fi
	# What gmig and the mock said besides the steps (why gmig refused
	# something, the dirty reports, the counts).
	grep -E 'gmig|gvt_mock' "$log.log" |
		grep -vE 'gmig-gvt-mock: mark|gvt_mock: (ok|skip|FAIL) ' |
		cut -c1-200 | tail -40 | sed 's/^/    /'
}

# param_runs PARAM WORD SEP FIGURE MODE...: for each MODE, gmig's parameter
# file PARAM set to it, the mock's command "WORD<SEP>MODE" (label
# WORD-MODE), then the figures it logged ("WORD <x>: FIGURE=...").
param_runs() {
	local param=$1 word=$2 sep=$3 figure=$4 mode
	shift 4
	for mode in "$@"; do
		echo "$mode" >"$param"
		run_type "$word$sep$mode" "$word-$mode"
		grep -o "$word [a-z]*: $figure=.*" "$OUT/gvt-mock-run-$word-$mode.log" |
			sed 's/^/    /'
	done
}

if loaded gmig && loaded gvt_mock; then
	run_type 1
	run_type v5_1 v5_1
	# A guest that flooded the ELSP, a stop-copy save that fails once:
	# the arc rolls back, the retry migrates every workload.
	run_type stop-copy-rollback stop-copy-rollback
	# Command-guided narrowing of the stop-copy re-hash: the same
	# workloads (profiles store, desktop, game) with rehash=writeset and
	# rehash=all; the figures are the mock's "narrow <profile>:" lines
	# (re-hash candidates at stop-copy, device downtime).
	param=/sys/module/gmig/parameters/rehash
	rehash_was=$(cat "$param")
	param_runs "$param" narrow ' ' rehash writeset all
	# Records kvmgt's hooks must keep right, each a step of its own on
	# a new vGPU (rehash=writeset: they count re-hash candidates).
	echo writeset >"$param"
	for step in engine-reset in-flight opregion; do
		run_type "$step" "$step"
	done
	# Hashing in place on GVT-g (patch 0021): the pages kvmgt holds
	# pinned are read where they are, the others through rw_gpa; then
	# the copy path, in the same run. Each migrates one vGPU and checks
	# that no page is lost; the figures are the mock's "hashing" lines.
	hparam=/sys/module/gmig/parameters/hashing
	hashing_was=$(cat "$hparam")
	param_runs "$hparam" hashing - pages_read_pinned inplace copy
	echo "$hashing_was" >"$hparam"
	echo "$rehash_was" >"$param"
	# The randomized hostile client (GMIG_HOSTILE_SECS, default 20;
	# GMIG_HOSTILE_SEED replays a run).
	secs=${GMIG_HOSTILE_SECS:-20} seed=${GMIG_HOSTILE_SEED:-$(date +%s)}
	run_type "hostile $seed $secs" hostile $((secs + 300))
	grep -o 'hostile: [0-9]* steps.*' "$OUT/gvt-mock-run-hostile.log" | sed 's/^/    /'
	# A pin gmig cannot record (its fault injection, armed from here:
	# the mock writing gmig's debugfs from its own write would nest
	# them) must refuse dirty logging until it is unpinned.
	if echo "fail_pin_records 1" >/sys/kernel/debug/gmig/gvt; then
		run_type pin-lost pin-lost
	else
		result fail gvt-mock:pin-record-lost
		echo "    gmig's debugfs gvt file refused fail_pin_records"
	fi
else
	result fail gvt-mock:ran
	echo "    gmig or gvt_mock is not loaded"
fi

unload() {
	mark unload
	rmmod gmig || return 1
	since unload | grep -q 'gvt_mock: companion unregistered' ||
		{ since unload; return 1; }
	rmmod gvt_mock || return 1
	! loaded gvt_mock
}
mcheck unload unload

if [ -n "$reload" ]; then
	mcheck gmig-reloaded insmod "$KO"
fi

since start >"$OUT/gvt-mock-dmesg.log"
if grep -E 'BUG:|WARNING:|Oops|general protection|KASAN:|UBSAN:|possible (recursive|circular) locking|Call Trace:|kernel panic|rust_panic' \
	"$OUT/gvt-mock-dmesg.log" >"$OUT/gvt-mock-splats.log"; then
	result fail gvt-mock:dmesg-clean
	sed 's/^/    /' "$OUT/gvt-mock-splats.log" | head -40
else
	result pass gvt-mock:dmesg-clean
fi
