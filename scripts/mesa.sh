#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mesa's stub i915 device (libintel_noop_drm_shim.so) and its execbuffer dump
# tool (libintel_dump_gpu.so), built from Debian's mesa source package at the
# version of the installed iris driver, into $GMIG_CACHE/mesa/VERSION. The
# distribution's iris then runs as a Skylake GT2 on a machine without an Intel
# GPU (scripts/trace.sh). Idempotent: a second run returns at once.
#
#   scripts/mesa.sh            build (or reuse) the tools
#   scripts/mesa.sh --print    print the directory holding the two .so files
#   scripts/mesa.sh --table    print the path of Mesa's Gen9 command table
#
# Run as root from scripts/setup.sh (apt). About 2 minutes of CPU.
set -euo pipefail

. "$(dirname "$0")/env.sh"

log() { printf '[mesa] %s\n' "$*"; }

ver=$(dpkg-query -W -f='${Version}' libgl1-mesa-dri 2>/dev/null) || {
	echo "mesa.sh: libgl1-mesa-dri is not installed" >&2
	exit 1
}
up=${ver%%-*}
dir=$GMIG_CACHE/mesa/$up
tools=$dir/build/src/intel/tools
case "${1:-}" in
--print) echo "$tools"; exit 0 ;;
--table) echo "$dir/gen9-commands.tsv"; exit 0 ;;
esac
table_fresh() {
	[ -s "$dir/gen9-commands.tsv" ] && [ "$dir/gen9-commands.tsv" -nt "$GMIG_ROOT/trace/genxml-table.py" ]
}
if [ -f "$tools/libintel_noop_drm_shim.so" ] && [ -f "$tools/libintel_dump_gpu.so" ] && table_fresh; then
	exit 0
fi

mkdir -p "$dir"
cd "$dir"
if [ ! -d "mesa-$up" ]; then
	# deb-src lists private to this directory, derived from the machine's own
	# sources: the main archive's stanza, as deb-src of bookworm-backports,
	# where the installed iris comes from.
	mkdir -p apt/lists/partial apt/sources.list.d
	awk 'BEGIN { RS = ""; ORS = "\n\n" } /Suites: bookworm( |$)/' \
		/etc/apt/sources.list.d/debian.sources |
		sed -e 's/^Types: deb$/Types: deb-src/' -e 's/^Suites: .*/Suites: bookworm-backports/' \
			>apt/sources.list.d/src.sources
	o=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$dir/apt/sources.list.d"
		-o "Dir::State::Lists=$dir/apt/lists" -o APT::Sandbox::User=root)
	log "fetching mesa $ver source (private apt lists)"
	apt-get "${o[@]}" update -qq
	# Only the upstream tarball is needed; a mirror may lack the Debian one.
	apt-get "${o[@]}" source --download-only "mesa=$ver" >/dev/null 2>&1 || true
	[ -f "mesa_$up.orig.tar.xz" ] || {
		echo "mesa.sh: no mesa_$up.orig.tar.xz from the archive" >&2
		exit 1
	}
	rm -rf "mesa-$up.tmp" && mkdir "mesa-$up.tmp"
	tar -xf "mesa_$up.orig.tar.xz" -C "mesa-$up.tmp" --strip-components=1
	mv "mesa-$up.tmp" "mesa-$up"
	rm -f mesa_"$up"*.tar.* mesa_"$up"*.dsc
fi
# Mesa's description of the Gen9 commands, as the table the parser
# cross-check of scripts/trace.sh analyze reads.
if ! table_fresh; then
	python3 "$GMIG_ROOT/trace/genxml-table.py" "mesa-$up" "mesa-$up/src/intel/genxml/gen90.xml" \
		gen9-commands.tsv.tmp
	mv gen9-commands.tsv.tmp gen9-commands.tsv
fi
# Bookworm's meson 1.0 is too old for Mesa 25 (it needs >= 1.1): pip's.
if [ ! -x venv/bin/meson ]; then
	log "pip: meson and mako for the mesa build"
	python3 -m venv venv
	venv/bin/pip install -q meson mako pyyaml packaging ply
fi
if [ ! -f build/build.ninja ]; then
	(cd "mesa-$up" && PATH="$dir/venv/bin:$PATH" meson setup "$dir/build" \
		-Dgallium-drivers= -Dvulkan-drivers= -Dtools=drm-shim,intel -Dllvm=disabled \
		-Dplatforms= -Dglx=disabled -Degl=disabled -Dgbm=disabled -Dopengl=false \
		-Dgles1=disabled -Dgles2=disabled -Dvideo-codecs= -Dbuildtype=release \
		-Dzstd=disabled -Dvalgrind=disabled -Dlibunwind=disabled -Dlmsensors=disabled \
		>"$dir/meson-setup.log" 2>&1) || {
		tail -20 "$dir/meson-setup.log" >&2
		exit 1
	}
fi
log "building the stub i915 device and intel_dump_gpu (about 2 minutes)"
PATH="$dir/venv/bin:$PATH" ninja -C build src/intel/tools/libintel_dump_gpu.so \
	src/intel/tools/libintel_noop_drm_shim.so >"$dir/ninja.log" 2>&1 || {
	tail -20 "$dir/ninja.log" >&2
	exit 1
}
log "ok: $tools"
