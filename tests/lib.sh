# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the end-to-end tests (sourced).

# vfio_qemu DIR UUID NAME [QEMU ARGS...]: a TCG guest holding the mdev UUID,
# with a QMP socket DIR/NAME.qmp and its output in DIR/NAME.log.
# VFIO_OPTS adds properties to the vfio-pci device (e.g. iommufd=ID);
# VFIO_MIGRATION sets enable-migration (default on; auto is QEMU's default).
# The firmware's debug console goes to DIR/NAME.fw (see wait_firmware).
vfio_qemu() {
	local dir=$1 uuid=$2 name=$3
	shift 3
	qemu-system-x86_64 -nodefaults -display none -machine q35 -accel tcg -m 128 \
		-chardev file,id=fw,path=$dir/$name.fw -device isa-debugcon,iobase=0x402,chardev=fw \
		-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid,enable-migration=${VFIO_MIGRATION:-on}${VFIO_OPTS:+,$VFIO_OPTS} \
		-qmp unix:$dir/$name.qmp,server=on,wait=off "$@" >$dir/$name.log 2>&1 &
}

# wait_firmware DIR NAME [N]: until the guest's firmware has ended its N-th
# power-on self test (default 1). Until then it reprograms the memory map
# (PAM, SMRAM), and QEMU unmaps and maps again the guest RAM the vGPU
# reaches: a GPU access in that window fails (-EINVAL from vfio_dma_rw) as
# it would fault on a real IOMMU, so no workload starts before. The guests
# have no boot device: SeaBIOS ends its POST with "No bootable device.".
wait_firmware() {
	local f=$1/$2.fw n=${3:-1}
	for _ in $(seq 240); do
		[ "$(grep -c 'No bootable device' "$f" 2>/dev/null)" -ge "$n" ] && return 0
		sleep 0.5
	done
	echo "$f: the firmware did not end POST $n"
	return 1
}

# result pass|fail|skip NAME: the line the host side counts.
result() { echo "GMIG-RESULT $1 $2"; }
# check NAME COMMAND...: runs COMMAND with its output in $OUT/NAME.log and
# reports it; on failure the log's tail follows, indented.
check() {
	local name=$1; shift
	if "$@" >"$OUT/$name.log" 2>&1; then
		result pass "$name"
	else
		result fail "$name"
		sed 's/^/    /' "$OUT/$name.log" | tail -40
	fi
}

# The vGPU provider the end-to-end QEMU tests run against, from
# GMIG_PROVIDER:
#   sim  gmig's own simulated GPU (the default): mdev parent "gmig";
#   gvt  gmig's GVT-g provider on the mdev vGPUs of gvt_mock.ko
#        (tests/gvt-mock, kvmgt's stand-in), taken from $GVT_MOCK_KO,
#        default $OUT/gvt-mock/gvt_mock.ko.
# gmig.ko is $GMIG_KO, default the repository root's. The stand-in guest
# driver's workload file and its workload/contexts/faults stats are gmig's
# for a sim vGPU and the mock's for a gvt one; the migration's stats
# (state, pages, images, stream errors, downtime) are gmig's for both.
GMIG_DEBUGFS=/sys/kernel/debug/gmig
GVT_MOCK_DEBUGFS=/sys/kernel/debug/gvt_mock

# vgpu_load KDIR ROOT: debugfs, mdev and the provider's modules, loaded
# where they are not. gvt: gvt_mock before gmig (gmig looks the companion
# interface up at load), so a gmig that did not register with the mock is
# unloaded and loaded again after it.
vgpu_load() {
	local kdir=$1 ko=${GMIG_KO:-$2/gmig.ko} mock
	case ${GMIG_PROVIDER:-sim} in
	sim|gvt) ;;
	*) echo "vgpu_load: GMIG_PROVIDER=$GMIG_PROVIDER is neither sim nor gvt"; return 1 ;;
	esac
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	grep -q '^mdev ' /proc/modules || insmod "$kdir/drivers/vfio/mdev/mdev.ko"
	case ${GMIG_PROVIDER:-sim} in
	sim)
		grep -q '^gmig ' /proc/modules || insmod "$ko"
		;;
	gvt)
		mock=${GVT_MOCK_KO:-${OUT:-}/gvt-mock/gvt_mock.ko}
		if ! grep -q '^gvt_mock ' /proc/modules; then
			[ -f "$mock" ] || { echo "vgpu_load: no gvt_mock.ko at $mock"; return 1; }
			if grep -q '^gmig ' /proc/modules; then
				rmmod gmig || return 1
			fi
			insmod "$mock" || return 1
		fi
		if grep -q '^gmig ' /proc/modules &&
			! grep -qx 'kvmgt: registered' $GMIG_DEBUGFS/gvt 2>/dev/null; then
			rmmod gmig || return 1
		fi
		grep -q '^gmig ' /proc/modules || insmod "$ko" || return 1
		grep -qx 'kvmgt: registered' $GMIG_DEBUGFS/gvt ||
			{ echo "vgpu_load: gmig did not register with gvt_mock"; cat $GMIG_DEBUGFS/gvt; return 1; }
		[ -d "$(vgpu_types)" ] || { echo "vgpu_load: no $(vgpu_types)"; return 1; }
		;;
	esac
}

# vgpu_types: the mdev type directory the tests create their vGPUs in
# (echo UUID >"$(vgpu_types)/create"); both vGPUs of a test get their own
# GGTT partition.
vgpu_types() {
	case ${GMIG_PROVIDER:-sim} in
	gvt) echo /sys/class/mdev_bus/gvt_mock/mdev_supported_types/gvt_mock-GVTg_V5_8 ;;
	*) echo /sys/class/mdev_bus/gmig/mdev_supported_types/gmig-small ;;
	esac
}

# vgpu_gmig_dir UUID: gmig's debugfs directory of the vGPU: the UUID for
# sim, the name the mock's stats give ("gmig: gvt-vgpu<id>") for gvt.
vgpu_gmig_dir() {
	local name
	case ${GMIG_PROVIDER:-sim} in
	gvt)
		name=$(awk '/^gmig:/ { print $2; exit }' $GVT_MOCK_DEBUGFS/$1/stats) || return 1
		[ -n "$name" ] || { echo "vgpu_gmig_dir: the mock names no gmig vGPU for $1" >&2; return 1; }
		echo $GMIG_DEBUGFS/$name
		;;
	*) echo $GMIG_DEBUGFS/$1 ;;
	esac
}

# vgpu_gmig_stats UUID: gmig's stats of the vGPU (its migration's state and
# figures), for either provider.
vgpu_gmig_stats() {
	local dir
	dir=$(vgpu_gmig_dir $1) && cat $dir/stats
}

# vgpu_stats UUID: everything about the vGPU, as "key: value" lines: gmig's
# stats for sim; for gvt the mock's (workload, contexts, faults, ...), then
# gmig's.
vgpu_stats() {
	case ${GMIG_PROVIDER:-sim} in
	gvt) cat $GVT_MOCK_DEBUGFS/$1/stats && vgpu_gmig_stats $1 ;;
	*) cat $GMIG_DEBUGFS/$1/stats ;;
	esac
}

# vgpu_stat UUID KEY: the value of KEY in vgpu_stats (its first line).
vgpu_stat() {
	vgpu_stats $1 | awk -v k="$2:" '$1 == k && !n++ { print $2 }'
}

# vgpu_ran UUID SECS: until the vGPU's stand-in driver has run a context,
# at most SECS s. A replay writes its buffers' pages before its first
# execbuffer: glmark2's game scene thousands, some seconds in the debug
# kernel.
vgpu_ran() {
	local i
	for ((i = 0; i < $2 * 2; i++)); do
		[ "$(vgpu_stat $1 contexts)" -gt 0 ] 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}

# vgpu_workload UUID CMD: the stand-in guest driver's workload on the vGPU
# ("start PROFILE", "stop"). "start replay ..." first writes the replay
# file $GMIG_REPLAY (made by scripts/trace.sh pack) to the vGPU's replay
# file (gmig's for sim, the mock's for gvt).
vgpu_workload() {
	local dir=$GMIG_DEBUGFS
	[ "${GMIG_PROVIDER:-sim}" = gvt ] && dir=$GVT_MOCK_DEBUGFS
	case $2 in
	"start replay"*)
		[ -f "${GMIG_REPLAY:-}" ] || { echo "vgpu_workload: no replay file GMIG_REPLAY=${GMIG_REPLAY:-}"; return 1; }
		cat "$GMIG_REPLAY" >$dir/$1/replay || return 1
		;;
	esac
	echo "$2" >$dir/$1/workload
}

# vgpu_dmesg: the kernel log lines of gmig (and of the mock for gvt).
vgpu_dmesg() {
	case ${GMIG_PROVIDER:-sim} in
	gvt) dmesg | grep -iE 'gmig|gvt_mock' ;;
	*) dmesg | grep -i gmig ;;
	esac
}
