#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The other ways QEMU 10 drives a vGPU through the VFIO migration uAPI, each
# ending with the vGPUs usable by the next VM. Runs inside the test VM, on
# the vGPUs of GMIG_PROVIDER (see tests/lib.sh): sim (default) gmig's sim
# vGPUs, gvt the mock kvmgt's (gvt_mock.ko from GVT_MOCK_KO) migrated by
# gmig's gvt provider.
#
#   autostart  destination without -S: RESUMING -> RUNNING_P2P -> RUNNING
#              with the data fd still open, then the workload runs there;
#   iommufd    both QEMUs on the iommufd backend (vfio cdev) instead of the
#              legacy container;
#   file       `stop`, then migrate to a file (STOP -> STOP_COPY, no
#              pre-copy), `cont` on the source (it goes on working), and a
#              new QEMU restores the file (-incoming defer + migrate-incoming);
#   cancel     migrate_cancel during pre-copy (PRE_COPY -> RUNNING): the
#              source goes on, and a second migration of it completes;
#   dst-killed the destination QEMU is killed during pre-copy: the source
#              recovers (QEMU puts it back to RUNNING), and both vGPUs then
#              migrate again, the killed side's vGPU as a new destination;
#   src-killed the source QEMU is killed during pre-copy (device closed in
#              PRE_COPY with DMA logging on): a new QEMU on that vGPU runs
#              the workload and migrates;
#   multifd    multifd with VFIO device state over multifd channels
#              (QEMU 10), return-path and switchover-ack;
#   no-devlog  x-device-dirty-page-tracking=off: QEMU gets no DMA log, the
#              pages the GPU wrote come only through gmig's own stream;
#   no-precopy-log  x-pre-copy-dirty-page-tracking=off: QEMU reads the
#              device's log only at stop-copy, so no page was ever hashed;
#   auto       enable-migration left at QEMU's default (auto, as libvirt
#              does): QEMU must find the device migratable with its DMA log;
#   reset      system_reset of a guest with a busy vGPU (VFIO_DEVICE_RESET),
#              then a migration;
#   back       A -> B, then B -> A with new QEMUs (a vGPU that was a source
#              is a destination next).
#
# Every migration that completes is checked like tests/gmig-migration.sh:
# the GPU's window of guest memory identical on both sides, the destination
# applied the image without stream errors and runs new work without fault.
# Usage: qemu-paths.sh KDIR SCENARIO
set -u
KDIR=$1
SCENARIO=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
T=/tmp/gmig-path-$SCENARIO
rm -rf "$T" && mkdir -p "$T"
U1=6d1e0000-0000-4000-8000-0000000000a1
U2=6d1e0000-0000-4000-8000-0000000000a2
PROVIDER=${GMIG_PROVIDER:-sim}
QMP="python3 $HERE/qmp.py"
PROFILE=desktop

. "$HERE/lib.sh"

fail() {
	echo "qemu-paths($SCENARIO): FAIL: $*"
	for f in "$T"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
	for u in $U1 $U2; do
		# Where the vGPU stands (queued and gmig: the mock's, for gvt).
		st=$(vgpu_stats $u 2>/dev/null)
		[ -n "$st" ] && { echo "--- $u"; grep -E '^(state|workload|contexts|faults|queued|gmig|images_applied|stream_errors):' <<<"$st"; }
	done
	vgpu_dmesg | tail -10
	cleanup
	exit 1
}
cleanup() {
	local n
	for n in "$T"/*.qmp; do
		[ -S "$n" ] && $QMP cmd "$n" quit >/dev/null 2>&1
	done
	wait 2>/dev/null
	for u in $U1 $U2; do
		[ -e /sys/bus/mdev/devices/$u ] && echo 1 >/sys/bus/mdev/devices/$u/remove
	done
	rm -f "$T"/*.mem "$T"/state.bin
}
q() { $QMP cmd "$@"; }

# wait_for QUERY QMP SECONDS STATUS...: until QUERY (query-status,
# query-migrate) answers one of the statuses, for at most SECONDS.
wait_for() {
	local query=$1 sock=$2 end=$(($(date +%s) + $3)) st
	shift 3
	while [ "$(date +%s)" -le $end ]; do
		st=$(q "$sock" $query 2>/dev/null | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p')
		for w in "$@"; do [ "$st" = "$w" ] && return 0; done
		sleep 0.25
	done
	echo "$query of $sock: '$st', not $*"
	return 1
}
wait_status() { local s=$1; shift; wait_for query-status $s 90 "$@"; }
wait_migration() { local s=$1; shift; wait_for query-migrate $s 300 "$@"; }

# start_workload UUID: the synthetic workload runs and executes contexts.
start_workload() {
	vgpu_workload $1 "start $PROFILE" || fail "workload start on $1"
	sleep 2
	contexts_grow $1 || fail "the workload on $1 executes no context"
}

# contexts_grow UUID: the vGPU executes contexts, without fault.
contexts_grow() {
	local a b
	a=$(vgpu_stat $1 contexts)
	sleep 2
	b=$(vgpu_stat $1 contexts)
	[ "$(vgpu_stat $1 faults)" = 0 ] || { echo "faults on $1"; return 1; }
	[ "${b:-0}" -gt "${a:-0}" ]
}

# same_window SRC DST: the GPU's window of guest memory is identical.
same_window() {
	local win=$((16 << 20)) len=$((40 << 20)) s1 s2
	q $1 pmemsave "{\"val\": $win, \"size\": $len, \"filename\": \"$T/a.mem\"}" >/dev/null ||
		fail "pmemsave $1"
	q $2 pmemsave "{\"val\": $win, \"size\": $len, \"filename\": \"$T/b.mem\"}" >/dev/null ||
		fail "pmemsave $2"
	s1=$(sha256sum <$T/a.mem | cut -c1-16)
	s2=$(sha256sum <$T/b.mem | cut -c1-16)
	echo "window sha256: source $s1 destination $s2"
	[ "$s1" = "$s2" ] || { cmp $T/a.mem $T/b.mem | head -3; rm -f $T/*.mem; fail "guest memory differs"; }
	rm -f $T/a.mem $T/b.mem	# the VM's /tmp is RAM
}

# applied UUID: the destination vGPU took the image without stream errors.
applied() {
	vgpu_gmig_stats $1 | grep -q '^images_applied: [1-9]' || fail "$1 applied no state image"
	vgpu_gmig_stats $1 | grep -q '^stream_errors: 0' || fail "stream errors on $1"
}

# migrate_checked SRC_QMP DST_QMP SRC_UUID DST_UUID [qmp.py migrate args]:
# a live migration to a paused destination, checked, then the destination
# continues and runs new work.
# A migration whose pre-copy has not converged after 120 s (QEMU's
# bandwidth estimate under TCG and the debug kernel can keep a GVT-g
# vGPU's 3 MiB stop-copy image above the 300 ms limit for minutes) gets
# its switchover forced, as an operator would: these scenarios test the
# uAPI paths, not convergence.
migrate_checked() {
	local sq=$1 dq=$2 su=$3 du=$4
	shift 4
	$QMP migrate $sq $dq unix:$T/mig.sock --paused-dst --converge-after=120 "$@" >$T/migrate.out
	grep '^migrate' $T/migrate.out | cut -c1-200
	grep -q '"status": "completed"' $T/migrate.out || fail "migration $su -> $du did not complete"
	same_window $sq $dq
	q $dq cont >/dev/null || fail "cont"
	wait_status $dq running || fail "destination not running"
	applied $du
	start_workload $du
}

vgpu_load "$KDIR" "$ROOT" || fail "modules of the $PROVIDER provider"
echo oneshot >/sys/module/gmig/parameters/precopy
echo hash >/sys/module/gmig/parameters/dirty
types=$(vgpu_types)
echo $U1 >$types/create || fail "create $U1"
echo $U2 >$types/create || fail "create $U2"

# src [ARGS]: a source QEMU on U1 whose workload runs.
src() {
	vfio_qemu "$T" $U1 src "$@"
	wait_status $T/src.qmp running || fail "source does not run"
	wait_firmware "$T" src || fail "source firmware"
	start_workload $U1
}
# dst UUID NAME [ARGS]: a paused destination listening on $T/mig.sock.
dst() {
	local u=$1 n=$2
	shift 2
	rm -f $T/mig.sock
	vfio_qemu "$T" $u $n -incoming unix:$T/mig.sock -S "$@"
}
# slow QMP: keep the migration in pre-copy: at 32 KiB/s and a 1 ms
# downtime limit it can never switch over (the vGPU's stop-copy data alone
# is far more than 32 bytes).
slow() {
	q $1 migrate-set-parameters '{"max-bandwidth": 32768, "downtime-limit": 1}' >/dev/null ||
		fail "max-bandwidth"
	q $1 migrate-set-capabilities '{"capabilities": [{"capability": "events", "state": true}]}' >/dev/null
	q $1 migrate "{\"uri\": \"unix:$T/mig.sock\"}" >/dev/null || fail "migrate"
	# Until the device is in pre-copy with DMA logging on (the set-up
	# takes a while under TCG): gmig's migration state, whatever the
	# provider.
	for _ in $(seq 120); do
		vgpu_gmig_stats $U1 | grep -q '^state: pre_copy' && break
		sleep 0.5
	done
	vgpu_gmig_stats $U1 | grep -q '^state: pre_copy' || fail "device not in PRE_COPY"
	q $1 query-migrate | grep -q '"status": "active"' || fail "migration not in pre-copy"
}
fast() {
	q $1 migrate-set-parameters '{"max-bandwidth": 1073741824, "downtime-limit": 300}' >/dev/null
}

case $SCENARIO in
autostart)
	src
	rm -f $T/mig.sock
	vfio_qemu "$T" $U2 dst -incoming unix:$T/mig.sock
	$QMP migrate $T/src.qmp $T/dst.qmp unix:$T/mig.sock >$T/migrate.out ||
		{ cat $T/migrate.out; fail "migration to a running destination"; }
	grep '^migrate' $T/migrate.out | cut -c1-200
	applied $U2
	start_workload $U2
	;;
iommufd)
	export VFIO_OPTS=iommufd=iommufd0
	src -object iommufd,id=iommufd0
	dst $U2 dst -object iommufd,id=iommufd0
	pid=$(pgrep -f "$T/src.qmp" | head -1)
	ls -l /proc/$pid/fd | grep -q '/dev/iommu' || fail "source QEMU does not use /dev/iommu"
	ls -l /proc/$pid/fd | grep -q '/dev/vfio/devices/' || fail "source QEMU does not use the vfio cdev"
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2
	;;
file)
	src
	q $T/src.qmp stop >/dev/null
	wait_status $T/src.qmp paused || fail "source did not stop"
	# A paused VM has no pre-copy image, so its device goes out whole at
	# the switchover (3 MiB on GVT-g). Once the RAM is in the file QEMU
	# measures a bandwidth near zero and would wait forever for that to
	# fit its downtime limit: it is given the file's bandwidth, as an
	# operator gives it a link's (1 GiB/s: the VM's /tmp is RAM).
	q $T/src.qmp migrate-set-parameters '{"avail-switchover-bandwidth": 1073741824}' >/dev/null ||
		fail "avail-switchover-bandwidth"
	q $T/src.qmp migrate "{\"uri\": \"file:$T/state.bin\"}" >/dev/null || fail "migrate to file"
	wait_migration $T/src.qmp completed failed || fail "save to file"
	q $T/src.qmp query-migrate | cut -c1-200
	q $T/src.qmp query-migrate | grep -q '"completed"' || fail "save to file did not complete"
	echo "saved $(stat -c %s $T/state.bin) bytes"
	# A restore from the file, while the source VM stays paused.
	vfio_qemu "$T" $U2 dst -incoming defer -S
	wait_status $T/dst.qmp inmigrate || fail "destination not waiting"
	q $T/dst.qmp migrate-incoming "{\"uri\": \"file:$T/state.bin\"}" >/dev/null ||
		fail "migrate-incoming"
	wait_status $T/dst.qmp prelaunch paused || fail "restore from file"
	wait_migration $T/dst.qmp completed || fail "restore did not complete"
	same_window $T/src.qmp $T/dst.qmp
	q $T/dst.qmp cont >/dev/null
	wait_status $T/dst.qmp running || fail "restored VM not running"
	applied $U2
	start_workload $U2
	# The saved source VM goes on, and its vGPU works.
	q $T/src.qmp cont >/dev/null
	wait_status $T/src.qmp running || fail "source did not continue after the save"
	start_workload $U1
	;;
cancel)
	src
	dst $U2 dst
	slow $T/src.qmp
	q $T/src.qmp migrate_cancel >/dev/null || fail "migrate_cancel"
	wait_migration $T/src.qmp cancelled || fail "not cancelled"
	wait_status $T/src.qmp running || fail "source not running after cancel"
	contexts_grow $U1 || fail "source vGPU stalled after cancel"
	q $T/dst.qmp quit >/dev/null 2>&1
	sleep 1
	fast $T/src.qmp
	dst $U2 dst2
	migrate_checked $T/src.qmp $T/dst2.qmp $U1 $U2
	;;
dst-killed)
	src
	dst $U2 dst
	slow $T/src.qmp
	pkill -9 -f "$T/dst.qmp"
	wait_migration $T/src.qmp failed cancelled || fail "source migration did not fail"
	wait_status $T/src.qmp running || fail "source not running after the destination died"
	contexts_grow $U1 || fail "source vGPU stalled after a failed migration"
	fast $T/src.qmp
	rm -f $T/dst.qmp
	dst $U2 dst2
	migrate_checked $T/src.qmp $T/dst2.qmp $U1 $U2
	;;
src-killed)
	src
	dst $U2 dst
	slow $T/src.qmp
	pkill -9 -f "$T/src.qmp"
	sleep 2
	q $T/dst.qmp quit >/dev/null 2>&1
	sleep 1
	rm -f $T/src.qmp $T/dst.qmp
	src
	dst $U2 dst2
	migrate_checked $T/src.qmp $T/dst2.qmp $U1 $U2
	;;
multifd)
	src
	# multifd must be on before the destination listens.
	rm -f $T/mig.sock
	vfio_qemu "$T" $U2 dst -incoming defer -S \
		-trace enable=vfio_load_state_device_buffer_incoming,file=$T/dst.trace
	wait_status $T/dst.qmp inmigrate || fail "destination not waiting"
	caps='[{"capability": "multifd", "state": true}, {"capability": "return-path", "state": true},
		{"capability": "switchover-ack", "state": true}, {"capability": "events", "state": true}]'
	q $T/dst.qmp migrate-set-capabilities "{\"capabilities\": $caps}" >/dev/null || fail "destination capabilities"
	q $T/dst.qmp migrate-incoming "{\"uri\": \"unix:$T/mig.sock\"}" >/dev/null || fail "migrate-incoming"
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2 --cap=multifd --cap=return-path --cap=switchover-ack
	# The device state came through multifd channels, not the main one.
	[ -s $T/dst.trace ] || fail "no VFIO device state buffer arrived over multifd"
	echo "device state buffers over multifd: $(grep -c incoming $T/dst.trace)"
	;;
no-devlog)
	export VFIO_OPTS=x-device-dirty-page-tracking=off
	src
	dst $U2 dst
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2
	;;
no-precopy-log)
	export VFIO_OPTS=x-pre-copy-dirty-page-tracking=off
	src
	dst $U2 dst
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2
	;;
auto)
	export VFIO_MIGRATION=auto
	src
	dst $U2 dst
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2
	grep -qi 'blocker\|not migratable' $T/src.log && fail "QEMU found the vGPU not migratable"
	;;
reset)
	src
	q $T/src.qmp system_reset >/dev/null || fail "system_reset"
	wait_firmware "$T" src 2 || fail "source firmware after the reset"
	start_workload $U1
	dst $U2 dst
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2
	;;
back)
	src
	dst $U2 dst
	migrate_checked $T/src.qmp $T/dst.qmp $U1 $U2
	q $T/src.qmp quit >/dev/null 2>&1
	sleep 1
	rm -f $T/src.qmp
	dst $U1 back
	migrate_checked $T/dst.qmp $T/back.qmp $U2 $U1
	;;
*)
	fail "unknown scenario"
	;;
esac
cleanup
echo "qemu-paths($SCENARIO): passed (provider=$PROVIDER)"
