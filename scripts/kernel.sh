#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) the cached test kernel: tinyconfig + kernel/<flavour>.config
# fragments, built out of the source tree with O= into
#   $GMIG_CACHE/build/<source version>-<flavour>
# A stamp holds the hash of the fragments; when they change, the config is
# merged again and make rebuilds incrementally. Prints nothing but progress
# on stderr; "kernel.sh --print-kdir" prints the build directory.
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${FLAVOUR:-base}
frags=("$GMIG_ROOT/kernel/base.config")
[ "$FLAVOUR" = base ] || frags+=("$GMIG_ROOT/kernel/$FLAVOUR.config")

# Extra make variables a fragment asks for ("# gmig-make: LLVM=-19").
while read -r var; do
	KMAKE_VARS+=("$var")
done < <(sed -n 's/^# gmig-make: *//p' "${frags[@]}")

srcver() { make -s -C "$KSRC" kernelversion 2>/dev/null; }
KOUT=$GMIG_CACHE/build/$(srcver)-$FLAVOUR

if [ "${1:-}" = --print-kdir ]; then
	echo "$KOUT"
	exit 0
fi

log() { printf '[kernel] %s\n' "$*" >&2; }

hash=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
stamp=$KOUT/.gmig-config-hash
mkdir -p "$KOUT"
if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
	log "configuring $KOUT (tinyconfig + ${frags[*]##*/})"
	make -s -C "$KSRC" O="$KOUT" "${KMAKE_VARS[@]}" tinyconfig >/dev/null
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KOUT" "$KOUT/.config" "${frags[@]}" >/dev/null
	make -s -C "$KSRC" O="$KOUT" "${KMAKE_VARS[@]}" olddefconfig >/dev/null
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
make -C "$KSRC" O="$KOUT" "${KMAKE_VARS[@]}" -j"$(nproc)" bzImage modules >"$KOUT/build.log" 2>&1 ||
	{ tail -50 "$KOUT/build.log" >&2; exit 1; }
# uAPI headers (linux/vfio.h of this kernel) for the selftests and samples.
make -s -C "$KSRC" O="$KOUT" "${KMAKE_VARS[@]}" headers >>"$KOUT/build.log" 2>&1
touch "$KOUT/.gmig-built"
log "built in $(($(date +%s) - start)) s"
