#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The guest half of `make demo`. Usage: demo-vm.sh KDIR
set -eu
KDIR=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
grep -q '^mdev ' /proc/modules || insmod "$KDIR/drivers/vfio/mdev/mdev.ko"
echo "\$ insmod gmig.ko"
insmod "$ROOT/gmig.ko"
dmesg | grep -E 'gmig' | sed 's/^/  dmesg: /'
echo "\$ cat /sys/kernel/debug/gmig/version"
sed 's/^/  /' /sys/kernel/debug/gmig/version
echo "\$ rmmod gmig"
rmmod gmig
dmesg | tail -1 | sed 's/^/  dmesg: /'
