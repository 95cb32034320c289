#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) the cached test kernel: tinyconfig + kernel/<flavour>.config
# fragments, built out of the source tree with O= into
#   $GMIG_CACHE/build/<source version>-<flavour>
# A stamp holds the hash of the fragments; when they change, the config is
# merged again and make rebuilds incrementally. Prints nothing but progress
# on stderr; "kernel.sh --print-kdir" prints the build directory.
#
# A fragment may name a patch series ("# gmig-patches: patches/gvt", a
# directory of git format-patch files relative to the repository, applied in
# name order). That flavour then builds from its own source tree,
#   $GMIG_CACHE/src/linux-<major>-<flavour>
# a copy of the pristine tree (cp -a) with the series applied. When the
# series changes, the files the old and the new series touch are restored
# from the pristine tree, the new series is applied and those files are
# touched, so make rebuilds what depends on them (an old mtime would not).
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${FLAVOUR:-base}
frags=("$GMIG_ROOT/kernel/base.config")
[ "$FLAVOUR" = base ] || frags+=("$GMIG_ROOT/kernel/$FLAVOUR.config")

# Extra make variables a fragment asks for ("# gmig-make: LLVM=-19").
while read -r var; do
	KMAKE_VARS+=("$var")
done < <(sed -n 's/^# gmig-make: *//p' "${frags[@]}")

# A patch series the flavour is built with ("# gmig-patches: patches/gvt").
series=$(sed -n 's/^# gmig-patches: *//p' "${frags[@]}" | tail -1)

srcver() { make -s -C "$KSRC" kernelversion 2>/dev/null; }
KOUT=$GMIG_CACHE/build/$(srcver)-$FLAVOUR

if [ "${1:-}" = --print-kdir ]; then
	echo "$KOUT"
	exit 0
fi

log() { printf '[kernel] %s\n' "$*" >&2; }

# Files a series creates, modifies or deletes (paths relative to the tree).
series_files() {
	[ $# -gt 0 ] || return 0
	sed -n -e 's|^+++ b/||p' -e 's|^--- a/||p' "$@" | sed 's/\t.*//' | sort -u
}

# Bring $SRC (a copy of $KSRC) in line with the series in $GMIG_ROOT/$series.
sync_series() {
	local dir=$GMIG_ROOT/$series pset phash stamp=$SRC/.gmig-patches-hash
	local list=$SRC/.gmig-patches-files f
	pset=()
	[ -d "$dir" ] && mapfile -t pset < <(find "$dir" -maxdepth 1 -name '*.patch' | sort)
	phash=$( (printf '%s\n' "${pset[@]##*/}"; [ ${#pset[@]} = 0 ] || cat "${pset[@]}") |
		sha256sum | cut -c1-16)
	if [ ! -d "$SRC" ]; then
		log "copying $KSRC to $SRC"
		rm -rf "$SRC.tmp"
		cp -a "$KSRC" "$SRC.tmp"
		: >"$SRC.tmp/.gmig-patches-files"
		mv "$SRC.tmp" "$SRC"
	fi
	[ "$(cat "$stamp" 2>/dev/null)" = "$phash" ] && return 0
	log "applying ${series} (${#pset[@]} patches) to $SRC"
	rm -f "$stamp"
	# Remember old + new files first: an interrupted run restores both.
	sort -u "$list" <(series_files "${pset[@]}") >"$list.new"
	mv "$list.new" "$list"
	while IFS= read -r f; do
		if [ -e "$KSRC/$f" ]; then
			cp "$KSRC/$f" "$SRC/$f"
		else
			rm -f "$SRC/$f"
		fi
	done <"$list"
	for f in "${pset[@]}"; do
		patch -s -p1 -N -f --no-backup-if-mismatch -d "$SRC" <"$f" ||
			{ log "$f does not apply to $KSRC"; exit 1; }
	done
	while IFS= read -r f; do
		[ -e "$SRC/$f" ] && touch "$SRC/$f"
	done <"$list"
	series_files "${pset[@]}" >"$list"
	rm -f "$KOUT/.gmig-built"
	echo "$phash" >"$stamp"
}

SRC=$KSRC
if [ -n "$series" ]; then
	SRC=$GMIG_CACHE/src/linux-$KVER_MAJOR-$FLAVOUR
	mkdir -p "$KOUT"
	sync_series
fi

hash=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
stamp=$KOUT/.gmig-config-hash
mkdir -p "$KOUT"
if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
	log "configuring $KOUT (tinyconfig + ${frags[*]##*/})"
	make -s -C "$SRC" O="$KOUT" "${KMAKE_VARS[@]}" tinyconfig >/dev/null
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$KOUT" "$KOUT/.config" "${frags[@]}" >/dev/null
	make -s -C "$SRC" O="$KOUT" "${KMAKE_VARS[@]}" olddefconfig >/dev/null
	# Every fragment line must have survived olddefconfig.
	missing=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$KOUT/.config" && continue ;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			grep -q "^$opt=" "$KOUT/.config" || continue ;;
		*)
			continue ;;
		esac
		log "config: $line did not stick"
		missing=1
	done < <(cat "${frags[@]}")
	[ $missing = 0 ] || { log "fragment options missing (dependencies?)"; exit 1; }
	rm -f "$KOUT/.gmig-built"
	echo "$hash" >"$stamp"
fi
# What an out-of-tree build against this tree must pass to make (Makefile).
printf '%s\n' "${KMAKE_VARS[@]}" >"$KOUT/.gmig-make-vars"

if [ -f "$KOUT/.gmig-built" ]; then
	exit 0
fi
log "building $KOUT (-j$(nproc)); a fresh build takes 7-11 minutes on 2 cores"
start=$(date +%s)
make -C "$SRC" O="$KOUT" "${KMAKE_VARS[@]}" -j"$(nproc)" bzImage modules >"$KOUT/build.log" 2>&1 ||
	{ tail -50 "$KOUT/build.log" >&2; exit 1; }
# uAPI headers (linux/vfio.h of this kernel) for the selftests and samples.
make -s -C "$SRC" O="$KOUT" "${KMAKE_VARS[@]}" headers >>"$KOUT/build.log" 2>&1
touch "$KOUT/.gmig-built"
log "built in $(($(date +%s) - start)) s"
