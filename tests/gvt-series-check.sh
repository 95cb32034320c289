#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Cheap check of the patches/gvt series, no GVT kernel needed:
#   1. the series applies in name order to a temporary copy of the files it
#      touches in the pristine tree ($KSRC), the way scripts/kernel.sh
#      applies it (patch -p1 -N -f);
#   2. each patch is checkpatch --strict clean;
#   3. in complete_current_workload() the companion's workload_completed
#      hook is called after workload->complete() (which writes the CSB into
#      the guest's HWSP) and before the workload is destroyed;
#   4. in emulate_ggtt_mmio_write() the new value passed to the ggtt_write
#      hook is the guest entry, saved from e before ggtt_get_host_entry()
#      overwrites e with the old host entry (not e itself);
#   5. gmig's copy of the interface header (rust/gvt/intel_gvt_companion.h) is
#      the one the series creates;
#   6. intel_vgpu_clean_workloads() reports each workload it drops to the
#      companion's workload_completed before it frees it;
#   7. each guest memory write GVT-g makes outside a workload (the OpRegion
#      mailbox answer, a stray MMIO write) is reported to gpa_written by
#      the statement right after it.
# Prints "GMIG-RESULT pass|fail <name>" per test and "N passed, N failed".
# Usage: tests/gvt-series-check.sh [series dir]   (default patches/gvt)
set -uo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cd "$GMIG_ROOT"

dir=${1:-patches/gvt}
passed=0 failed=0
result() {
	echo "GMIG-RESULT $1 gvt-series-$2"
	if [ "$1" = pass ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
finish() {
	echo "gvt-series: $passed passed, $failed failed"
	[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
	exit
}

mapfile -t pset < <(find "$dir" -maxdepth 1 -name '*.patch' | sort)
[ ${#pset[@]} -gt 0 ] || { echo "no patches in $dir"; result fail apply; finish; }
tmp=$(mktemp -d /tmp/gmig-gvt-series.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# 1. Apply (only the files the series touches are copied).
while IFS= read -r f; do
	[ -e "$KSRC/$f" ] || continue
	mkdir -p "$tmp/src/$(dirname "$f")"
	cp "$KSRC/$f" "$tmp/src/$f"
done < <(sed -n -e 's|^+++ b/||p' -e 's|^--- a/||p' "${pset[@]}" | sed 's/\t.*//' | sort -u)
ok=1
for p in "${pset[@]}"; do
	if ! patch -s -p1 -N -f --no-backup-if-mismatch -d "$tmp/src" <"$p" >"$tmp/patch.log" 2>&1; then
		echo "    ${p##*/} does not apply:"
		sed 's/^/    /' "$tmp/patch.log" | head -20
		ok=0
		break
	fi
done
if [ $ok = 1 ]; then result pass apply; else result fail apply; finish; fi

# 2. checkpatch, from outside any git work tree (in one it misreads the
# patch files as source files).
ok=1
for p in "${pset[@]}"; do
	abs=$(realpath "$p")
	if ! (cd "$tmp" && perl "$KSRC/scripts/checkpatch.pl" --strict -q "$abs") >"$tmp/cp.log" 2>&1; then
		echo "    ${p##*/}:"
		sed 's/^/    /' "$tmp/cp.log" | head -20
		ok=0
	fi
done
if [ $ok = 1 ]; then result pass checkpatch; else result fail checkpatch; fi

# The body of function $2 in file $1, "lineno<TAB>text" per line.
body() {
	awk -v fn="$2" '
		!inside && $0 ~ "^[a-z].*[ *]" fn "[(]" { inside = 1 }
		inside { print NR "\t" $0 }
		inside && /^}/ { exit }' "$1"
}
# Line number of the first body line matching the ERE $2 (body on stdin).
# Every awk over a body splits a line into n (number) and t (text).
split_nt='{ n = $0; sub(/\t.*/, "", n); n += 0; t = $0; sub(/^[0-9]+\t/, "", t) } '
line_of() { awk -v re="$1" "$split_nt"' t ~ re { print n; exit }'; }

# 3. The completion hook after complete(), before the workload is freed.
f=$tmp/src/drivers/gpu/drm/i915/gvt/scheduler.c
b=$(body "$f" complete_current_workload)
c=$(line_of 'workload->complete[(]workload[)];' <<<"$b")
h=$(line_of 'intel_gvt_companion_workload_completed[(]workload[)];' <<<"$b")
d=$(line_of 'intel_vgpu_destroy_workload[(]workload[)];' <<<"$b")
if [ -n "$c" ] && [ -n "$h" ] && [ -n "$d" ] && [ "$c" -lt "$h" ] && [ "$h" -lt "$d" ]; then
	result pass workload-completed-after-complete
else
	echo "    complete_current_workload: complete() at ${c:-?}, hook at ${h:-?}, destroy at ${d:-?}" \
		"(want complete < hook < destroy)"
	result fail workload-completed-after-complete
fi

# 4. The GGTT hook gets the guest entry saved before ggtt_get_host_entry().
f=$tmp/src/drivers/gpu/drm/i915/gvt/gtt.c
b=$(body "$f" emulate_ggtt_mmio_write)
g=$(line_of 'ggtt_get_host_entry[(]ggtt_mm, &e, g_gtt_index[)];' <<<"$b")
h=$(line_of 'intel_gvt_companion_ggtt_write[(]' <<<"$b")
# The hook's last argument (the call may span lines).
arg=$(awk -v h="${h:-0}" "$split_nt"'n >= h && h { s = s t; if (t ~ /\);/) exit }
	END { print s }' <<<"$b" | tr -d ' \t' | sed -n 's/.*,\([^,]*\));.*/\1/p')
var=${arg%.val64}
why=
if [ -z "$g" ] || [ -z "$h" ] || [ -z "$var" ]; then
	why="host entry read at ${g:-?}, hook at ${h:-?}, value '${arg}'"
elif [ "$var" = e ]; then
	why="the hook is passed e.val64, the old host entry by then"
else
	# Saved from e before the host entry is read, not assigned after.
	s=$(awk -v v="$var" -v g="$g" "$split_nt"'n < g && t ~ "^[ \t]*" v "[ \t]*=[ \t]*e([.]val64)?;" { l = n }
		END { print l }' <<<"$b")
	late=$(awk -v v="$var" -v g="$g" -v h="$h" "$split_nt"'n >= g && n < h &&
		(t ~ "[^a-z_.>]" v "[ \t]*=[^=]" || t ~ "&" v "[^a-z_]") { print n; exit }' <<<"$b")
	if [ -z "$s" ]; then
		why="'$var' is not saved from e before ggtt_get_host_entry() (line $g)"
	elif [ -n "$late" ]; then
		why="'$var' is changed at line $late, after ggtt_get_host_entry()"
	fi
fi
if [ -z "$why" ]; then
	result pass ggtt-write-guest-value
else
	echo "    emulate_ggtt_mmio_write: $why"
	result fail ggtt-write-guest-value
fi

# 6. Every workload dropped unrun is reported, before it is freed.
f=$tmp/src/drivers/gpu/drm/i915/gvt/scheduler.c
b=$(body "$f" intel_vgpu_clean_workloads)
h=$(line_of 'intel_gvt_companion_workload_completed[(]pos[)];' <<<"$b")
d=$(line_of 'intel_vgpu_destroy_workload[(]pos[)];' <<<"$b")
if [ -n "$h" ] && [ -n "$d" ] && [ "$h" -lt "$d" ]; then
	result pass workload-dropped-reported
else
	echo "    intel_vgpu_clean_workloads: hook at ${h:-?}, destroy at ${d:-?} (want hook < destroy)"
	result fail workload-dropped-reported
fi

# 7. Each intel_gvt_write_gpa() outside workloads, then the hook.
why=
for fn in opregion.c:intel_vgpu_emulate_opregion_request mmio.c:intel_vgpu_emulate_mmio_write; do
	b=$(body "$tmp/src/drivers/gpu/drm/i915/gvt/${fn%%:*}" "${fn#*:}")
	r=$(awk "$split_nt"'
		t ~ /intel_gvt_write_gpa[(]/ { if (w) bad = n; w = 1; writes++; next }
		w && t ~ /^[ \t]*intel_gvt_companion_gpa_written[(]/ { w = 0; hooks++; next }
		w && t ~ /;[ \t]*$/ && t !~ /^[ \t]*[^ \t(]*[,)]/ { bad = n; w = 0 }
		END { if (w) bad = "end"; print writes + 0, hooks + 0, bad }' <<<"$b")
	set -- $r
	if [ "$1" = 0 ] || [ "$1" != "$2" ] || [ -n "${3:-}" ]; then
		why="$why ${fn#*:}: $1 writes, $2 hooks right after${3:+, not at $3};"
	fi
done
if [ -z "$why" ]; then
	result pass gpa-written-reported
else
	echo "   $why"
	result fail gpa-written-reported
fi

# 5. gmig's copy of the header.
hdr=$tmp/src/include/drm/intel/intel_gvt_companion.h
if cmp -s rust/gvt/intel_gvt_companion.h "$hdr"; then
	result pass header-copy
else
	diff -u rust/gvt/intel_gvt_companion.h "$hdr" | head -20 | sed 's/^/    /'
	result fail header-copy
fi
finish
