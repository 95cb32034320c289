# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the end-to-end tests (sourced).

# vfio_qemu DIR UUID NAME [QEMU ARGS...]: a TCG guest holding the mdev UUID,
# with a QMP socket DIR/NAME.qmp and its output in DIR/NAME.log.
# VFIO_OPTS adds properties to the vfio-pci device (e.g. iommufd=ID);
# VFIO_MIGRATION sets enable-migration (default on; auto is QEMU's default).
vfio_qemu() {
	local dir=$1 uuid=$2 name=$3
	shift 3
	qemu-system-x86_64 -nodefaults -display none -machine q35 -accel tcg -m 128 \
		-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid,enable-migration=${VFIO_MIGRATION:-on}${VFIO_OPTS:+,$VFIO_OPTS} \
		-qmp unix:$dir/$name.qmp,server=on,wait=off "$@" >$dir/$name.log 2>&1 &
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
