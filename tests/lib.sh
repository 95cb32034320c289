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
