#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Reference end-to-end test with the kernel's stock mtty sample (a known-good
# VFIO v2 migration driver): two mtty mdevs, a source QEMU and an -incoming
# QEMU, live migration over a unix socket with QEMU's default dirty tracking
# (DMA logging through the device's log_ops). Runs inside the test VM.
# Usage: mtty-migration.sh KDIR
set -u
KDIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
T=/tmp/mtty-e2e
rm -rf $T && mkdir -p $T

fail() { echo "mtty-migration: $*"; tail -5 $T/src.log $T/dst.log 2>/dev/null; exit 1; }

grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko" || fail "insmod mdev"
grep -q '^mtty ' /proc/modules || insmod "$KDIR/samples/vfio-mdev/mtty.ko" || fail "insmod mtty"
types=/sys/class/mdev_bus/mtty/mdev_supported_types
type=$(ls $types | head -1)
U1=8e1b1c2a-0000-4000-8000-000000000001
U2=8e1b1c2a-0000-4000-8000-000000000002
echo $U1 >$types/$type/create || fail "create $U1"
echo $U2 >$types/$type/create || fail "create $U2"

. "$HERE/lib.sh"
vfio_qemu "$T" $U1 src
vfio_qemu "$T" $U2 dst -incoming unix:$T/mig.sock
python3 "$HERE/qmp.py" migrate $T/src.qmp $T/dst.qmp unix:$T/mig.sock
rc=$?
python3 "$HERE/qmp.py" cmd $T/src.qmp quit >/dev/null 2>&1
python3 "$HERE/qmp.py" cmd $T/dst.qmp quit >/dev/null 2>&1
wait
echo 1 >/sys/bus/mdev/devices/$U1/remove
echo 1 >/sys/bus/mdev/devices/$U2/remove
rmmod mtty
[ $rc = 0 ] || fail "migration did not complete with the destination running"
if grep -qi 'error' $T/src.log $T/dst.log; then
	fail "QEMU reported an error"
fi
echo "mtty-migration: completed, destination running"
