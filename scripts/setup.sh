#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent set-up for gmig on a Debian 12 (bookworm) machine, run as root.
# Installs the build dependencies, bindgen, virtme-ng and QEMU >= 8, and fetches the
# Linux 7.3 source from Debian's linux-source-7.3 package without changing the
# machine's apt suites. Every apt source is derived from the machine's own
# /etc/apt/sources.list.d/debian.sources. A second run does nothing in seconds.
set -euo pipefail

. "$(dirname "$0")/env.sh"

log() { printf '[setup] %s\n' "$*"; }

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: must run as root (apt-get, kernel cache in $GMIG_CACHE)" >&2
		exit 1
	fi
}

# The machine's Debian mirror, from its deb822 sources (first URIs line of the
# plain Debian archive, not the security one).
debian_mirror() {
	local f=/etc/apt/sources.list.d/debian.sources
	[ -r "$f" ] || { echo "no $f: cannot derive the Debian mirror" >&2; exit 1; }
	awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f"
}

# A private apt configuration: its own sources dir and lists, so that the
# machine's suites stay as they are.
private_apt() {
	local name=$1; shift
	local dir=$GMIG_CACHE/apt/$name
	mkdir -p "$dir/sources.list.d" "$dir/lists/partial"
	APT_PRIVATE=(-o "Dir::Etc::SourceList=/dev/null"
		-o "Dir::Etc::SourceParts=$dir/sources.list.d"
		-o "Dir::State::Lists=$dir/lists")
}

write_suite() {
	local file=$1 suite=$2
	cat >"$file" <<EOS
Types: deb
URIs: $(debian_mirror)
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
}

APT_PKGS=(bc flex bison libelf-dev libssl-dev cpio dwarves kmod udev
	libclang-19-dev clang-19 lld-19 llvm-19 rustc-web rust-web-src rust-web-clippy rustfmt-web
	make gcc python3 python3-venv xz-utils
	busybox-static mdevctl python3-matplotlib python3-docutils iproute2 util-linux
	ninja-build pkg-config libexpat1-dev zlib1g-dev libegl-dev libgles-dev bc
	xvfb xauth apitrace glmark2-es2-x11)

install_apt() {
	local missing=() p
	for p in "${APT_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "apt: installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

# backports_install APT-OPTIONS... PACKAGES...: from bookworm-backports, via
# private lists that hold the machine's own sources plus backports.
backports_install() {
	private_apt bookworm-backports
	local dir=$GMIG_CACHE/apt/bookworm-backports/sources.list.d
	cp /etc/apt/sources.list.d/debian.sources "$dir/"
	write_suite "$dir/backports.sources" bookworm-backports
	apt-get "${APT_PRIVATE[@]}" update -qq
	DEBIAN_FRONTEND=noninteractive apt-get "${APT_PRIVATE[@]}" install -y -qq \
		-t bookworm-backports "$@" >/dev/null
}

# QEMU 10 (VFIO v2 migration client).
install_qemu() {
	if command -v qemu-system-x86_64 >/dev/null &&
		qemu-system-x86_64 --version | awk 'NR==1 { split($4, v, "."); exit !(v[1] >= 8) }'; then
		return
	fi
	log "apt: installing qemu-system-x86 from bookworm-backports"
	backports_install qemu-system-x86
}

# libvirt (libvirtd with its QEMU driver, and virsh), the release that
# matches QEMU 10 (tests/libvirt-migration.sh). No recommended packages: the
# tests start libvirtd themselves, per test host.
install_libvirt() {
	if command -v libvirtd >/dev/null && command -v virsh >/dev/null &&
		virsh --version | awk -F. '{ exit !($1 >= 10) }'; then
		return
	fi
	log "apt: installing libvirt from bookworm-backports"
	backports_install --no-install-recommends libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
}

# The real-workload captures (scripts/trace.sh): the iris driver of
# bookworm-backports (Mesa 25) and the libdrm headers that match it; then
# Mesa's stub i915 device and dump tool built from Debian's mesa source at
# that version (scripts/mesa.sh, about 2 minutes of CPU).
install_mesa() {
	if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' libgl1-mesa-dri 2>/dev/null || echo 0)" ge 25 ||
		! dpkg-query -W -f='${Status}' libdrm-dev 2>/dev/null | grep -q "ok installed"; then
		log "apt: installing Mesa 25 (iris) and libdrm-dev from bookworm-backports"
		backports_install libgl1-mesa-dri libegl-mesa0 libglx-mesa0 libgbm1 libdrm-dev
	fi
	"$GMIG_ROOT/scripts/mesa.sh"
}

install_bindgen() {
	if [ -x "$BINDGEN" ]; then
		return
	fi
	log "cargo: installing bindgen-cli (about 3 minutes)"
	cargo install --locked --root "$GMIG_CACHE/cargo" bindgen-cli >/dev/null 2>&1 ||
		cargo install --locked --root "$GMIG_CACHE/cargo" bindgen-cli
}

# cargo-fuzz drives the fuzz targets of the core crate (scripts/fuzz.sh).
install_cargo_fuzz() {
	if [ -x "$GMIG_CACHE/cargo/bin/cargo-fuzz" ]; then
		return
	fi
	log "cargo: installing cargo-fuzz (about 1 minute)"
	cargo install --locked --root "$GMIG_CACHE/cargo" cargo-fuzz >/dev/null 2>&1 ||
		cargo install --locked --root "$GMIG_CACHE/cargo" cargo-fuzz
}

install_vng() {
	if [ -x "$GMIG_CACHE/venv/bin/vng" ]; then
		return
	fi
	log "pip: installing virtme-ng"
	python3 -m venv "$GMIG_CACHE/venv"
	"$GMIG_CACHE/venv/bin/pip" install -q virtme-ng
}

fetch_kernel_source() {
	if [ -f "$KSRC/Makefile" ]; then
		return
	fi
	log "fetching linux-source-$KVER_MAJOR from trixie-backports (private apt lists)"
	private_apt trixie-backports
	write_suite "$GMIG_CACHE/apt/trixie-backports/sources.list.d/trixie-backports.sources" trixie-backports
	apt-get "${APT_PRIVATE[@]}" update -qq
	local dl=$GMIG_CACHE/dl
	mkdir -p "$dl"
	(cd "$dl" && apt-get "${APT_PRIVATE[@]}" -o APT::Sandbox::User=root download "linux-source-$KVER_MAJOR")
	local deb
	deb=$(ls -t "$dl"/linux-source-"$KVER_MAJOR"_*.deb | head -1)
	rm -rf "$dl/x" && mkdir -p "$dl/x"
	dpkg-deb -x "$deb" "$dl/x"
	log "unpacking $(basename "$deb")"
	mkdir -p "$GMIG_CACHE/src"
	rm -rf "$KSRC.tmp" && mkdir -p "$KSRC.tmp"
	tar -xf "$dl"/x/usr/src/linux-source-"$KVER_MAJOR".tar.xz -C "$KSRC.tmp" --strip-components=1
	mv "$KSRC.tmp" "$KSRC"
	rm -rf "$dl/x" "$deb"
}

need_root
mkdir -p "$GMIG_CACHE"
install_apt
install_mesa
install_qemu
install_libvirt
install_bindgen
install_cargo_fuzz
install_vng
fetch_kernel_source
log "ok: cache $GMIG_CACHE, kernel source $KSRC"
