#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# End to end with the real client: a QEMU 10 guest holding a gmig vGPU
# live-migrates to a second QEMU (-incoming, -S) holding another vGPU at a
# different GGTT partition, while the synthetic workload writes guest memory
# through the vGPU. GMIG_PROVIDER picks the vGPUs (see tests/lib.sh): sim
# (default) gmig's sim vGPUs, gvt the mock kvmgt's (gvt_mock.ko from
# GVT_MOCK_KO) migrated by gmig's gvt provider. QEMU's default dirty
# tracking is used, so QEMU learns of GPU-written pages only through gmig's
# DMA logging. Checks:
#   - QEMU reports "completed";
#   - the workload window of guest memory is identical on both sides
#     (no GPU-written page lost);
#   - QEMU's count of device-dirty pages (its vfio_get_dirty_bitmap trace)
#     equals the pages gmig's DMA logging reported (stats);
#   - after `cont` the destination runs, gmig restored the vGPU (remapping
#     when needed), and a workload started there completes without fault;
#   - gvt: the graphics addresses GVT-g uses outside command buffers (the
#     hardware fences, each engine's status page, the decoded primary
#     plane and cursor) lie in the destination's GM at the source's
#     offsets, the planes decode to the same guest frames, and the CSB of
#     the destination's workloads lands in the status page's guest frame
#     the source used (addresses_moved).
# Prints QEMU's downtime and gmig's stats. Runs inside the test VM.
# Usage: gmig-migration.sh KDIR [profile] [precopy] [dirty]
# profile replay runs the replay file $GMIG_REPLAY (on gvt through the
# mock's stand-in guest driver, tests/gvt-mock/kvmgt_drv.c and
# kvmgt_replay.c);
# GMIG_REHASH chooses the stop-copy re-hash (writeset, the default, or all).
set -u
KDIR=$1
PROFILE=${2:-desktop}
# replay: the captured workload $GMIG_REPLAY (scripts/trace.sh pack) runs in
# the same 40 MiB window the synthetic profiles use.
# GMIG_REPLAY_MB sets a larger window for a replay that needs one (the
# guest has 128 MiB: at most 96).
WINDOW_MB=40
START="start $PROFILE"
if [ "$PROFILE" = replay ]; then
	WINDOW_MB=${GMIG_REPLAY_MB:-40}
	START="start replay size=${WINDOW_MB}M"
fi
PRECOPY=${3:-oneshot}
DIRTY=${4:-hash}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
T=/tmp/gmig-e2e-$PRECOPY-$DIRTY
rm -rf "$T" && mkdir -p "$T"
U1=6d1e0000-0000-4000-8000-000000000001
U2=6d1e0000-0000-4000-8000-000000000002
PROVIDER=${GMIG_PROVIDER:-sim}
QMP="python3 $HERE/qmp.py"

fail() { echo "gmig-migration: FAIL: $*"; tail -5 "$T"/*.log 2>/dev/null; cleanup; exit 1; }
cleanup() {
	$QMP cmd "$T/src.qmp" quit >/dev/null 2>&1
	$QMP cmd "$T/dst.qmp" quit >/dev/null 2>&1
	wait 2>/dev/null
	for u in $U1 $U2; do
		[ -e /sys/bus/mdev/devices/$u ] && echo 1 >/sys/bus/mdev/devices/$u/remove
	done
	rm -f "$T"/*.mem	# 80 MiB of RAM-backed /tmp in the VM
}

. "$HERE/lib.sh"
vgpu_load "$KDIR" "$ROOT" || fail "modules of the $PROVIDER provider"
echo "$PRECOPY" >/sys/module/gmig/parameters/precopy || fail "precopy=$PRECOPY"
echo "$DIRTY" >/sys/module/gmig/parameters/dirty || fail "dirty=$DIRTY"
# GMIG_REHASH=all|writeset: the stop-copy re-hash (default writeset).
echo "${GMIG_REHASH:-writeset}" >/sys/module/gmig/parameters/rehash || fail "rehash=${GMIG_REHASH:-}"
types=$(vgpu_types)
echo $U1 >$types/create || fail "create $U1"
echo $U2 >$types/create || fail "create $U2"

# The source traces every dirty bitmap it pulls from the device's log.
vfio_qemu "$T" $U1 src -trace enable=vfio_get_dirty_bitmap,file=$T/src.trace
vfio_qemu "$T" $U2 dst -incoming unix:$T/mig.sock -S
# Start the workload once the source guest runs (QEMU resets the device
# while it starts, and a reset stops any workload) and its firmware has
# set the memory map up.
for _ in $(seq 120); do
	$QMP cmd $T/src.qmp query-status 2>/dev/null | grep -q '"running"' && break
	sleep 0.5
done
wait_firmware "$T" src || fail "source firmware"
vgpu_workload $U1 "$START" || fail "workload start"
sleep 3
[ "$(vgpu_stat $U1 workload)" = "$PROFILE" ] || fail "workload not running on the source"
vgpu_ran $U1 60 || fail "the workload executed no context"
before=$(vgpu_stat $U1 contexts)
[ "$(vgpu_stat $U1 faults)" = 0 ] || fail "the workload faulted on the source"

replayed=$(vgpu_stat $U1 replay_executed)
# GMIG_CONVERGE_AFTER=S: force the switchover after S s of pre-copy (the
# demo's naive baseline does not converge under QEMU's 300 ms limit).
$QMP migrate $T/src.qmp $T/dst.qmp unix:$T/mig.sock --paused-dst \
	${GMIG_CONVERGE_AFTER:+--converge-after=$GMIG_CONVERGE_AFTER} >$T/migrate.out
rc=$?
cat $T/migrate.out
grep -q '"status": "completed"' $T/migrate.out || fail "migration did not complete (rc=$rc)"

# A replay must have run execbuffers, and so model writes, while the
# migration copied: otherwise the window comparison below proves nothing.
if [ "$PROFILE" = replay ]; then
	during=$(($(vgpu_stat $U1 replay_executed) - ${replayed:-0}))
	echo "replay: $during execbuffers ran during the migration, $(vgpu_stat $U1 replay_model_pages) pages written by the model in all"
	[ "$during" -gt 0 ] || fail "no replayed execbuffer ran during the migration"
	# sim: every page the model wrote must have been named by the
	# streamer's analysis for its execbuffer, migration or not (the gvt
	# mock has no such witness: the window comparison is its check).
	if [ "$PROVIDER" = sim ]; then
		unnamed=$(vgpu_stat $U1 replay_unnamed_pages)
		echo "replay: $unnamed pages written by the model that the analysis did not name"
		[ "$unnamed" = 0 ] || fail "the analysis missed $unnamed model-written pages"
	else
		echo "replay: scanner $(vgpu_stat $U1 scan_batches) batches, $(vgpu_stat $U1 scan_cmds) commands, $(vgpu_stat $U1 scan_refused) refused; $(vgpu_stat $U1 pins) pins"
	fi
fi
# Both sides are stopped now: the GPU's working window must be identical.
win=$((16 << 20)); len=$((WINDOW_MB << 20))
$QMP cmd $T/src.qmp pmemsave "{\"val\": $win, \"size\": $len, \"filename\": \"$T/src.mem\"}" >/dev/null
$QMP cmd $T/dst.qmp pmemsave "{\"val\": $win, \"size\": $len, \"filename\": \"$T/dst.mem\"}" >/dev/null
s1=$(sha256sum <$T/src.mem | cut -c1-16); s2=$(sha256sum <$T/dst.mem | cut -c1-16)
echo "window sha256: source $s1 destination $s2"
if [ "$s1" != "$s2" ]; then
	cmp -l $T/src.mem $T/dst.mem | awk '{ p = int(($1 - 1) / 4096); if (!(p in s)) { s[p] = 1; n++; if (n <= 8) printf "  window page %d (guest %#x) differs from byte %d\n", p, '"$win"' + p * 4096, ($1 - 1) % 4096 } } END { print "  " n " pages differ" }'
	# GMIG_E2E_KEEP=DIR keeps both windows for a closer look.
	[ -n "${GMIG_E2E_KEEP:-}" ] && cp $T/src.mem $T/dst.mem "$GMIG_E2E_KEEP/"
	echo "--- source stats"; vgpu_stats $U1
	fail "guest memory differs after migration"
fi

# What QEMU learnt from gmig's DMA log must be what gmig says it reported.
[ -s $T/src.trace ] || fail "QEMU wrote no vfio_get_dirty_bitmap trace (no device dirty tracking?)"
qemu_dirty=$(grep -o 'dirty_pages=[0-9]*' $T/src.trace | awk -F= '{ s += $2 } END { print s + 0 }')
syncs=$(grep -c 'dirty_pages=' $T/src.trace)
gmig_dirty=$(awk '/^pages_reported_precopy:/ { a = $2 } /^pages_sent_stopcopy:/ { b = $2 }
	END { print a + b }' <(vgpu_gmig_stats $U1))
echo "dirty pages: QEMU counted $qemu_dirty in $syncs device log reads, gmig reported $gmig_dirty"
# gvt: the mock adds its stand-in driver's CPU writes to what QEMU reads
# (what a real VMM's own dirty log would have): QEMU counts the union.
cpu_dirty=0
[ "$PROVIDER" = gvt ] && cpu_dirty=$(vgpu_stat $U1 cpu_dirty_reported)
if [ "${cpu_dirty:-0}" = 0 ]; then
	[ "$qemu_dirty" = "$gmig_dirty" ] || fail "QEMU's dirty page count differs from gmig's stats"
else
	echo "dirty pages: the stand-in driver's CPU writes added $cpu_dirty"
	[ "$qemu_dirty" -ge "$gmig_dirty" ] && [ "$qemu_dirty" -le $((gmig_dirty + cpu_dirty)) ] ||
		fail "QEMU's dirty page count is not gmig's plus at most the driver's CPU writes"
fi

# gvt, hashing=inplace (the default): kvmgt lends gmig the pages it holds
# pinned for their hashes (patch 0021) instead of gmig copying each.
if [ "$PROVIDER" = gvt ] && [ "$(cat /sys/module/gmig/parameters/hashing)" = inplace ]; then
	lent=$(vgpu_stat $U1 pages_read_pinned)
	echo "hashing in place: kvmgt lent ${lent:-0} pages, gmig hashed" \
		"$(vgpu_stat $U1 pages_hashed_inplace) in place and copied" \
		"$(vgpu_stat $U1 pages_copied_unpinned) kvmgt had not pinned"
	[ "${lent:-0}" -gt 0 ] || fail "hashing=inplace, but kvmgt lent gmig no page"
fi

$QMP cmd $T/dst.qmp cont >/dev/null || fail "cont"
sleep 1
$QMP cmd $T/dst.qmp query-status | grep -q '"running"' || fail "destination not running"
echo "--- source stats"; vgpu_stats $U1
echo "--- destination stats"; vgpu_stats $U2
vgpu_gmig_stats $U2 | grep -q '^images_applied: [1-9]' || fail "destination applied no state image"
vgpu_gmig_stats $U2 | grep -q '^stream_errors: 0' || fail "stream errors on the destination"

# The workload continues on the destination.
vgpu_workload $U2 "$START" || fail "workload start on destination"
sleep 3
vgpu_ran $U2 60
after=$(vgpu_stat $U2 contexts)
faults=$(vgpu_stat $U2 faults)
echo "destination: $after contexts, $faults faults"
[ "${after:-0}" -gt 0 ] || { vgpu_stats $U2; fail "no context ran on the destination"; }
[ "$faults" = 0 ] || fail "faults on the destination"
vgpu_workload $U2 stop

# addresses_moved SRC DST: the mock's stats (see above); prints each
# address that is not where it belongs and fails then.
addresses_moved() {
	awk '
	function num(x,    i, n, c) {	# mawk has no strtonum: 0x... or decimal
		x = tolower(x); n = 0
		if (x !~ /^0x/) return x + 0
		for (i = 3; i <= length(x); i++) {
			c = index("0123456789abcdef", substr(x, i, 1))
			if (!c) break
			n = n * 16 + c - 1
		}
		return n
	}
	function off(v, side) {	# offset in its slice, -1 outside
		v = num(v)
		if (v >= lo[side] && v < lo[side] + lsz[side]) return v - lo[side]
		if (v >= hi[side] && v < hi[side] + hsz[side]) return 0x100000000 + v - hi[side]
		return -1
	}
	FNR == 1 { side++ }
	$1 == "gm:" {
		split($3, a, "+"); lo[side] = num(a[1]); lsz[side] = num(a[2])
		split($5, a, "+"); hi[side] = num(a[1]); hsz[side] = num(a[2])
	}
	$1 ~ /^(fence[0-9]+|hws_pga[0-9]+|primary|cursor|csb_gfn[0-9]+|csb_writes):$/ {
		k = $1; v[side, k] = $2; g[side, k] = $3; keys[k] = 1
	}
	END {
		bad = 0
		for (k in keys) {
			if (k ~ /^csb/) continue
			if (v[1, k] == "none" || v[2, k] == "none") {
				print "    " k " not decoded: source " v[1, k] ", destination " v[2, k]; bad = 1; continue
			}
			name = k; sub(/:$/, "", name)
			if (k ~ /^fence/) { split(v[1, k], s1, "-"); split(v[2, k], s2, "-") }
			else { s1[1] = s1[2] = v[1, k]; s2[1] = s2[2] = v[2, k] }
			o1 = off(s1[1], 1); o2 = off(s2[1], 2)
			e1 = off(s1[2], 1); e2 = off(s2[2], 2)
			if (o1 < 0 || o2 != o1 || e1 < 0 || e2 != e1) {
				print "    " name ": destination " v[2, k] " (source " v[1, k] ") is not at the source'"'"'s offset in the destination'"'"'s GM"; bad = 1
			}
			if (k ~ /^(primary|cursor)/ && g[1, k] != g[2, k]) {
				print "    " name ": destination decodes to guest address " g[2, k] ", source to " g[1, k]; bad = 1
			}
			n++
		}
		if (!keys["fence0:"] || !keys["hws_pga0:"] || !keys["primary:"] || !keys["cursor:"]) {
			print "    the stand-in driver set no fence, status page or plane up"; bad = 1
		}
		if (num(v[2, "csb_writes:"]) == 0 || v[1, "csb_gfn0:"] != v[2, "csb_gfn0:"] || num(v[1, "csb_gfn0:"]) == 0) {
			print "    CSB: " v[2, "csb_writes:"] " writes on the destination, last in guest frame " v[2, "csb_gfn0:"] " (source: " v[1, "csb_gfn0:"] ")"; bad = 1
		}
		if (!bad)
			printf "    %d addresses at the destination'"'"'s place, CSB in guest frame %s on both\n", n, v[2, "csb_gfn0:"]
		exit bad
	}' <(vgpu_stats $1) <(vgpu_stats $2)
}
# (The replay driver sets none of them up.)
if [ "$PROVIDER" = gvt ] && [ "$PROFILE" != replay ]; then
	echo "graphics addresses outside command buffers:"
	addresses_moved $U1 $U2 || fail "fences, status pages or display bases not moved to the destination"
fi
cleanup
echo "gmig-migration: completed ($PROFILE precopy=$PRECOPY dirty=$DIRTY provider=$PROVIDER)"
