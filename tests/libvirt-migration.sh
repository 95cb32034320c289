#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The operators' path, inside the test VM: libvirt (libvirtd and virsh from
# Debian's packages) live-migrates a domain holding a busy gmig sim vGPU
# between two libvirt "hosts". Each host is a libvirtd with its own network
# namespace (joined to the other by a veth pair), its own mount namespace
# (its own /etc/libvirt, /run/libvirt, /var/lib/libvirt, /etc/mdevctl.d),
# its own host UUID, and a persistent vGPU defined with mdevctl. Both hosts
# share the one kernel, so each vGPU has its own UUID and the destination's
# domain XML (virsh migrate --xml) names the destination's vGPU, as Nova
# does for mdev instances.
#
# Steps, each a result line:
#   libvirt-hosts              both daemons up, vGPUs defined and started
#   libvirt-migrate-a-to-b     virsh migrate --live, A to B
#   libvirt-migrate-b-to-a     and back
#   libvirt-save-restore       virsh save / virsh restore
#   libvirt-managedsave-start  virsh managedsave / virsh start
#   libvirt-abort-then-migrate virsh domjobabort mid-migration, then again
# After each, the guest-memory window the GPU writes is byte-identical on
# both sides (each side's guest RAM is a shared file, see dom_xml), the
# domain runs where it should, the workload runs on its new vGPU without
# fault, and the vGPU left behind takes a new domain.
# Usage: libvirt-migration.sh KDIR OUTDIR (make check runs it; LIBVIRT=0 skips it)
#   gmig.ko is taken from $GMIG_KO, default the repository root.
set -u
KDIR=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
KO=${GMIG_KO:-$ROOT/gmig.ko}
. "$HERE/lib.sh"	# result, check

# In the VM /run is a tmpfs of its own (/tmp is an overlay of the host's).
T=/run/gmig-libvirt
DBG=/sys/kernel/debug/gmig
DOM=gmig-guest
PROFILE=${LIBVIRT_PROFILE:-desktop}
# Host name, address, host UUID and the persistent vGPU of each host.
declare -A IP=([a]=10.77.0.1 [b]=10.77.0.2)
declare -A HOSTUUID=([a]=1a000000-0000-4000-8000-00000000000a [b]=1b000000-0000-4000-8000-00000000000b)
declare -A VGPU=([a]=6d1e0000-0000-4000-8000-0000000000a1 [b]=6d1e0000-0000-4000-8000-0000000000b1)
# The window of guest RAM the workload writes (as in gmig-migration.sh).
WIN_MIB=16
LEN_MIB=40

# on HOST COMMAND...: runs COMMAND inside HOST's namespaces.
on() {
	local h=$1
	shift
	nsenter -t "$(cat "$T/$h/holder.pid")" -m -n -- "$@"
}

# host_up HOST: its directories and configuration, then a process that
# holds its network and mount namespaces.
host_up() {
	local h=$1 r=$T/$1
	mkdir -p "$r"/etc "$r"/run "$r"/lib "$r"/log "$r"/cache "$r"/mdevctl.d "$r"/ram
	cp -a /etc/libvirt/. "$r/etc/"
	# mdevctl wants its callout and notifier directories, not the host's
	# definitions.
	mkdir -p "$r"/mdevctl.d/scripts.d/callouts "$r"/mdevctl.d/scripts.d/notifiers
	cat >"$r/etc/libvirtd.conf" <<-EOF
		listen_tls = 0
		listen_tcp = 1
		listen_addr = "${IP[$h]}"
		auth_tcp = "none"
		host_uuid = "${HOSTUUID[$h]}"
		log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
		log_filters = "1:qemu.qemu_migration 3:*"
	EOF
	# The test VM has no users, cgroup hierarchy or security module for
	# libvirt to manage; QEMU runs as root, its output goes to a file.
	# migration_host: the address the destination gives the source's QEMU.
	cat >"$r/etc/qemu.conf" <<-EOF
		user = "root"
		group = "root"
		dynamic_ownership = 0
		remember_owner = 0
		security_driver = "none"
		cgroup_controllers = [ ]
		namespaces = [ ]
		stdio_handler = "file"
		migration_host = "${IP[$h]}"
		migration_address = "${IP[$h]}"
		memory_backing_dir = "$r/ram"
	EOF
	ip netns add "gmig-$h" || return 1
	ip -n "gmig-$h" link set lo up
	nsenter --net="/run/netns/gmig-$h" unshare -m --propagation private sh -c "
		mount --bind $r/etc /etc/libvirt &&
		mount --bind $r/run /run/libvirt &&
		mount --bind $r/lib /var/lib/libvirt &&
		mount --bind $r/log /var/log/libvirt &&
		mount --bind $r/cache /var/cache/libvirt &&
		mount --bind $r/mdevctl.d /etc/mdevctl.d &&
		exec sleep infinity" &
	echo $! >"$r/holder.pid"
	for _ in $(seq 50); do
		[ "$(readlink /proc/$!/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] &&
			on "$h" mountpoint -q /etc/mdevctl.d && return 0
		sleep 0.1
	done
	echo "host $h: namespaces not set up"
	return 1
}

# daemon_up HOST: libvirtd listening on HOST's address; waits for it.
daemon_up() {
	local h=$1
	on "$h" libvirtd --daemon --listen --pid-file "$T/$h/libvirtd.pid" || return 1
	for _ in $(seq 240); do
		on "$h" virsh -q version >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	echo "host $h: libvirtd did not answer"
	tail -20 "$T/$h/log/libvirtd.log"
	return 1
}

hosts_up() {
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko" || return 1
	grep -q '^gmig ' /proc/modules || insmod "$KO" || return 1
	echo oneshot >/sys/module/gmig/parameters/precopy
	echo hash >/sys/module/gmig/parameters/dirty
	# Mount points of the hosts' own directories (/var/log is a tmpfs).
	mkdir -p /run/libvirt /var/log/libvirt /var/lib/libvirt /var/cache/libvirt /etc/mdevctl.d || return 1
	host_up a && host_up b || return 1
	ip link add gmig-va type veth peer name gmig-vb || return 1
	ip link set gmig-va netns gmig-a && ip link set gmig-vb netns gmig-b || return 1
	ip -n gmig-a addr add "${IP[a]}/24" dev gmig-va && ip -n gmig-a link set gmig-va up
	ip -n gmig-b addr add "${IP[b]}/24" dev gmig-vb && ip -n gmig-b link set gmig-vb up
	# Host b starts from host a's QEMU capability cache (same binary).
	daemon_up a || return 1
	cp -a "$T/a/cache/." "$T/b/cache/"
	daemon_up b || return 1
	on a virsh -q -c "qemu+tcp://${IP[b]}/system" version >/dev/null || {
		echo "host a cannot reach host b's libvirtd"
		return 1
	}
	local h
	for h in a b; do
		on "$h" mdevctl define --auto -u "${VGPU[$h]}" -p gmig -t gmig-small || return 1
		on "$h" mdevctl start -u "${VGPU[$h]}" || return 1
		on "$h" mdevctl list --defined | grep "${VGPU[$h]}" | grep -q auto || {
			echo "host $h: ${VGPU[$h]} not defined for autostart"
			return 1
		}
		[ -e "/sys/bus/mdev/devices/${VGPU[$h]}/vfio-dev" ] || return 1
	done
	# Each host sees only its own definitions.
	on a mdevctl list --defined | grep -q "${VGPU[b]}" && { echo "host a sees host b's vGPU"; return 1; }
	for h in a b; do
		echo "libvirt $(on "$h" virsh -q version | awk '/^Using library/ { print $NF }') on host $h"
	done
	on a virsh -q version
}

hosts_down() {
	local h d
	for h in a b; do
		[ -f "$T/$h/holder.pid" ] || continue
		for d in $(on "$h" virsh list --name 2>/dev/null); do
			on "$h" virsh destroy "$d" >/dev/null 2>&1
		done
		on "$h" virsh managedsave-remove "$DOM" >/dev/null 2>&1
		on "$h" mdevctl stop -u "${VGPU[$h]}" >/dev/null 2>&1
		on "$h" mdevctl undefine -u "${VGPU[$h]}" >/dev/null 2>&1
		[ -f "$T/$h/libvirtd.pid" ] && kill "$(cat "$T/$h/libvirtd.pid")" 2>/dev/null
		kill "$(cat "$T/$h/holder.pid")" 2>/dev/null
		ip netns del "gmig-$h" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"/*/ram "$T"/*.ram "$T"/*/*.save
}

# dom_xml NAME HOST: a TCG guest holding HOST's vGPU, its RAM a shared file
# in HOST's memory_backing_dir (so the test can keep the source's RAM after
# the source QEMU has gone), its firmware's debug console in HOST's
# directory (wait_firmware).
dom_xml() {
	cat <<-EOF
		<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
		  <name>$1</name>
		  <memory unit='MiB'>128</memory>
		  <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>
		  <vcpu>1</vcpu>
		  <os><type arch='x86_64' machine='q35'>hvm</type></os>
		  <devices>
		    <emulator>/usr/bin/qemu-system-x86_64</emulator>
		    <controller type='usb' model='none'/>
		    <memballoon model='none'/>
		    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
		      <source><address uuid='${VGPU[$2]}'/></source>
		    </hostdev>
		  </devices>
		  <qemu:commandline>
		    <qemu:arg value='-chardev'/><qemu:arg value='file,id=fw,path=$T/$2/$1.fw'/>
		    <qemu:arg value='-device'/><qemu:arg value='isa-debugcon,iobase=0x402,chardev=fw'/>
		  </qemu:commandline>
		</domain>
	EOF
}

# keep_ram HOST NAME: a second name for the running domain's RAM file.
keep_ram() {
	local f
	f=$(ls -t "$T/$1"/ram/libvirt/qemu/*-"$DOM"/* 2>/dev/null | head -1)
	[ -n "$f" ] || { echo "no RAM file of $DOM on host $1"; return 1; }
	rm -f "$T/$2.ram"
	ln "$f" "$T/$2.ram"
}

# same_window: the GPU's window in the kept source and destination RAM.
same_window() {
	local s d
	s=$(dd if="$T/src.ram" bs=1M skip=$WIN_MIB count=$LEN_MIB status=none | sha256sum | cut -c1-16)
	d=$(dd if="$T/dst.ram" bs=1M skip=$WIN_MIB count=$LEN_MIB status=none | sha256sum | cut -c1-16)
	echo "window sha256: source $s destination $d"
	rm -f "$T/src.ram" "$T/dst.ram"
	[ "$s" = "$d" ] || { echo "guest memory differs"; return 1; }
}

state_is() {	# HOST STATE
	local s
	s=$(on "$1" virsh domstate "$DOM" 2>&1)
	[ "$s" = "$2" ] || { echo "host $1: $DOM is '$s', expected '$2'"; return 1; }
}

# workload_on HOST: the workload runs on HOST's vGPU, without fault.
workload_on() {
	local u=${VGPU[$1]} c
	echo "start $PROFILE" >"$DBG/$u/workload" || return 1
	sleep 3
	c=$(awk '/^contexts:/ { print $2 }' "$DBG/$u/stats")
	[ "${c:-0}" -gt 0 ] || { echo "host $1: no context ran"; return 1; }
	grep -q '^faults: 0' "$DBG/$u/stats" || { echo "host $1: the workload faulted"; return 1; }
	echo "host $1: workload $PROFILE ran $c contexts"
}

# figures FROM TO: libvirt's view of the finished job and the source
# vGPU's gmig stats beside it, on one line the VM's summary prints; fails
# if gmig's DMA log reported no page (QEMU did not use it). The job is the
# source's if libvirt still knows the domain there (a persistent domain;
# the source's view has the device's share), else the destination's (a
# transient domain is gone from its source once it has left).
figures() {
	local j g h=$1
	on "$h" virsh domjobinfo --completed --keep-completed "$DOM" >/dev/null 2>&1 || h=$2
	echo "completed job as host $h saw it:"
	j=$(on "$h" virsh domjobinfo --completed --keep-completed "$DOM" 2>/dev/null | tee "$T/jobinfo.txt" |
		awk -F': +' '/^(Time elapsed|Total downtime|Data total|Memory total):/ {
			gsub(/ +/, " ", $2); printf " %s: %s;", $1, $2 }')
	cat "$T/jobinfo.txt"
	# The device's share (QEMU's query-migrate "vfio" "transferred"),
	# which virsh prints only among the raw statistics.
	on "$h" virsh domjobinfo --completed --rawstats "$DOM" 2>/dev/null | tee "$T/jobinfo-raw.txt"
	j="$j$(awk -F'[=:] *' '/vfio_data_transferred/ { printf " VFIO data: %s bytes;", $NF }' "$T/jobinfo-raw.txt")"
	echo "--- source vGPU stats"
	cat "$DBG/${VGPU[$1]}/stats"
	g=$(awk '/^(downtime_us|pages_reported_precopy|pages_sent_stopcopy|final_image_bytes):/ { printf " %s %s", $1, $2 }' \
		"$DBG/${VGPU[$1]}/stats")
	echo "figures $1-to-$2:$j gmig:$g"
	grep -qE '^pages_reported_precopy: [1-9]' "$DBG/${VGPU[$1]}/stats" || {
		echo "gmig's DMA log reported no dirty page"
		return 1
	}
}

# migrate FROM TO [VIRSH OPTIONS]: live migration with libvirt's defaults,
# the destination left paused (--suspend) until both windows are compared.
migrate() {
	local from=$1 to=$2 poll rc
	shift 2
	on "$from" virsh dumpxml --migratable "$DOM" |
		sed "s/${VGPU[$from]}/${VGPU[$to]}/; s|$T/$from/|$T/$to/|" >"$T/$to.xml"
	keep_ram "$from" src || return 1
	(while sleep 0.5; do
		on "$from" virsh domjobinfo "$DOM" 2>/dev/null |
			awk '/^(Job type|Data processed|Memory processed):/' | tr -s ' \n' ' '
		echo
	done) >"$T/jobinfo-live.log" 2>&1 &
	poll=$!
	on "$from" virsh migrate --live --suspend --xml "$T/$to.xml" "$@" \
		"$DOM" "qemu+tcp://${IP[$to]}/system"
	rc=$?
	kill $poll
	wait $poll 2>/dev/null
	echo "domjobinfo during the migration (last of $(grep -c . "$T/jobinfo-live.log") polls):"
	grep -v '^ *$' "$T/jobinfo-live.log" | tail -2 | sed 's/^/  /'
	[ $rc = 0 ] || { echo "virsh migrate failed (rc=$rc)"; return 1; }
	figures "$from" "$to" || return 1
	state_is "$to" paused || return 1
	keep_ram "$to" dst && same_window || return 1
	on "$to" virsh resume "$DOM" >/dev/null && state_is "$to" running || return 1
	on "$from" virsh list --name | grep -qx "$DOM" && { echo "still active on $from"; return 1; }
	grep -q '^stream_errors: 0' "$DBG/${VGPU[$to]}/stats" || { echo "stream errors on $to"; return 1; }
	workload_on "$to"
}

# vgpu_free HOST: the vGPU the domain left takes a new domain.
vgpu_free() {
	dom_xml probe "$1" >"$T/probe.xml"
	on "$1" virsh create "$T/probe.xml" >/dev/null || { echo "host $1: vGPU not free"; return 1; }
	on "$1" virsh domstate probe | grep -q running || return 1
	on "$1" virsh destroy probe >/dev/null
	echo "host $1: ${VGPU[$1]} took a new domain"
}

first_migration() {
	dom_xml "$DOM" a >"$T/dom.xml"
	on a virsh define "$T/dom.xml" >/dev/null || return 1
	on a virsh start "$DOM" || return 1
	wait_firmware "$T/a" "$DOM" || return 1
	workload_on a || return 1
	migrate a b || return 1
	vgpu_free a
}

back_migration() {
	migrate b a || return 1
	state_is a running || return 1
	vgpu_free b
}

save_restore() {
	local f=$T/a/$DOM.save
	keep_ram a src || return 1
	on a virsh save "$DOM" "$f" || return 1
	state_is a "shut off" || return 1
	on a virsh restore "$f" --paused || return 1
	keep_ram a dst && same_window || return 1
	on a virsh resume "$DOM" >/dev/null && state_is a running || return 1
	rm -f "$f"
	workload_on a
}

managedsave_start() {
	keep_ram a src || return 1
	on a virsh managedsave "$DOM" || return 1
	state_is a "shut off" || return 1
	on a virsh dominfo "$DOM" | grep -q '^Managed save: *yes' || { echo "no managed save image"; return 1; }
	on a virsh start "$DOM" --paused || return 1
	keep_ram a dst && same_window || return 1
	on a virsh resume "$DOM" >/dev/null && state_is a running || return 1
	workload_on a
}

abort_then_migrate() {
	local pid rc c1 c2
	on a virsh dumpxml --migratable "$DOM" |
		sed "s/${VGPU[a]}/${VGPU[b]}/; s|$T/a/|$T/b/|" >"$T/b.xml"
	# 1 MiB/s: the migration is still copying RAM when it is aborted.
	on a virsh migrate --live --bandwidth 1 --xml "$T/b.xml" "$DOM" \
		"qemu+tcp://${IP[b]}/system" >"$T/aborted.out" 2>&1 &
	pid=$!
	for _ in $(seq 120); do
		on a virsh domjobinfo "$DOM" 2>/dev/null | grep -q '^Memory processed: *[1-9]' && break
		sleep 0.5
	done
	on a virsh domjobinfo "$DOM"
	on a virsh domjobabort "$DOM" || return 1
	wait $pid
	rc=$?
	cat "$T/aborted.out"
	[ $rc != 0 ] || { echo "the aborted migration reported success"; return 1; }
	state_is a running || return 1
	on b virsh list --name | grep -qx "$DOM" && { echo "$DOM active on b after the abort"; return 1; }
	# The workload kept running on the source through the abort.
	c1=$(awk '/^contexts:/ { print $2 }' "$DBG/${VGPU[a]}/stats")
	sleep 2
	c2=$(awk '/^contexts:/ { print $2 }' "$DBG/${VGPU[a]}/stats")
	echo "source after the abort: contexts $c1 -> $c2"
	[ "$c2" -gt "$c1" ] || { echo "the source's workload stopped"; return 1; }
	grep -q '^faults: 0' "$DBG/${VGPU[a]}/stats" || { echo "the source faulted"; return 1; }
	migrate a b
}

rm -rf "$T" && mkdir -p "$T"
STEPS="first_migration:libvirt-migrate-a-to-b back_migration:libvirt-migrate-b-to-a
	save_restore:libvirt-save-restore managedsave_start:libvirt-managedsave-start
	abort_then_migrate:libvirt-abort-then-migrate"
if hosts_up >"$OUT/libvirt-hosts.log" 2>&1; then
	result pass libvirt-hosts
	grep '^libvirt ' "$OUT/libvirt-hosts.log" | sed 's/^/    /'
	for step in $STEPS; do
		check "${step#*:}" "${step%%:*}"
		grep -E '^(figures|window)' "$OUT/${step#*:}.log" | cut -c1-220 | sed 's/^/    /'
	done
else
	result fail libvirt-hosts
	sed 's/^/    /' "$OUT/libvirt-hosts.log" | tail -40
	for step in $STEPS; do
		result fail "${step#*:}"
	done
fi
hosts_down
