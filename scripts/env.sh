# SPDX-License-Identifier: GPL-2.0
# Shared settings for gmig's scripts (sourced, not run).
GMIG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${GMIG_CACHE:=/var/cache/gmig}"
KVER_MAJOR=7.3
KSRC=$GMIG_CACHE/src/linux-$KVER_MAJOR
: "${BINDGEN:=$GMIG_CACHE/cargo/bin/bindgen}"
VNG=$GMIG_CACHE/venv/bin/vng
# Every script that boots a test VM holds this lock for the VM's life: two
# nested-TCG VMs at once slow each other until their tests time out.
VM_LOCK=$GMIG_CACHE/vm.lock
# Debian's rustc-web (with rust-src) must win over rustup's toolchain.
export PATH=/usr/bin:$PATH:$GMIG_CACHE/venv/bin
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
KMAKE_VARS=(RUSTC=/usr/bin/rustc BINDGEN="$BINDGEN" RUSTDOC=/usr/bin/rustdoc)
