#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The real-workload set: each workload captured with scripts/trace.sh on
# Mesa's stub Skylake GT2 and analyzed (Documentation/benchmarks.rst, "Real
# workloads").
#
#   trace/workloads.sh [check|traces] [DIR] [RESULTS]
#
# check: the short set `make check` runs; traces: the longer one of `make
# traces`. Captures go to DIR/NAME (default DIR: $GMIG_CACHE/traces/SET;
# the AUB files are large: 0.5-13 GB in the `traces` set, as intel_dump_gpu
# writes every buffer the driver maps at each execbuffer; each is deleted
# once analyzed unless GMIG_TRACE_KEEP=1; the check set packs three of
# them first, as DIR/NAME/capture.replay, for tests/vm-tests.sh's replays
# under QEMU). Prints one line per workload,
#   trace NAME: ok|FAIL execbuffers N bounded B ...
# and writes RESULTS (default DIR/results.json): one object per workload with `workload`,
# `source` and the analysis's summary fields. A workload passes when its
# program exits 0 after submitting work, the analysis reads the whole
# capture, no buffer the driver flagged written is missed in a bounded
# execbuffer, and gmig's parser agrees with Mesa's description on every
# command. Exits non-zero if any workload failed.
#
# Sources: glmark2 (Debian's glmark2-es2-x11) recorded with apitrace on
# llvmpipe under Xvfb and replayed with apitrace's eglretrace on the stub;
# gmig's own programs in trace/workloads/gmig-gl.c.
set -uo pipefail
. "$(dirname "$0")/../scripts/env.sh"

set_name=${1:-check}
case "$set_name" in
check | traces) ;;
*) echo "usage: workloads.sh [check|traces] [DIR] [RESULTS]" >&2; exit 2 ;;
esac
DIR=${2:-$GMIG_CACHE/traces/$set_name}
TRACE=$GMIG_ROOT/scripts/trace.sh
BIN=$GMIG_CACHE/trace/bin
mkdir -p "$DIR" "$BIN"
DIR=$(cd "$DIR" && pwd)
RESULTS=${3:-$DIR/results.json}

if ! make -s -C "$GMIG_ROOT/trace/workloads" O="$BIN" >"$DIR/build.log" 2>&1; then
	cat "$DIR/build.log"
	echo "trace gmig-gl: FAIL (build)"
	exit 1
fi

# glmark2 scenes, recorded with apitrace on llvmpipe under Xvfb (before
# the capture, outside it): the recording is the program's own GL calls;
# the replay on the stub is what iris submits for them.
record_glmark2() {
	local trace=$1
	shift
	local args=()
	for b in "$@"; do args+=(-b "$b"); done
	LIBGL_ALWAYS_SOFTWARE=1 xvfb-run -a apitrace trace --api egl -o "$trace" \
		/usr/bin/glmark2-es2 --off-screen -s 640x480 "${args[@]}"
}

# Workloads packed as replay files (DIR/NAME/capture.replay) for the
# end-to-end replay tests: the check set's only.
REPLAYS=()
if [ "$set_name" = check ]; then
	REPLAYS=(glmark2-desktop glmark2-game gmig-compute)
	FRAMES=2
	DESKTOP=(desktop:duration=0.1:effect=blur:windows=4 desktop:duration=0.1:effect=shadow:windows=4)
	GAME=(terrain:duration=0.1 refract:duration=0.1)
else
	FRAMES=12
	DESKTOP=(desktop:duration=1:effect=blur:windows=4 desktop:duration=1:effect=shadow:windows=4
		effect2d:duration=1)
	GAME=(terrain:duration=1 refract:duration=1 shadow:duration=1 jellyfish:duration=1 ideas:duration=1)
fi

# name|source|the work it must submit (summary field > 0)|command (run
# from DIR/NAME)
GLMARK2="glmark2 (Debian glmark2-es2-x11), recorded with apitrace"
WORKLOADS=(
	"glmark2-desktop|$GLMARK2|draws|${DESKTOP[*]}"
	"glmark2-game|$GLMARK2|draws|${GAME[*]}"
	"gmig-desktop|gmig|draws|$BIN/gmig-gl desktop $FRAMES"
	"gmig-game|gmig|draws|$BIN/gmig-gl game $FRAMES"
	"gmig-compute|gmig|dispatches|$BIN/gmig-gl compute $FRAMES"
	"gmig-video|gmig|draws|$BIN/gmig-gl video $FRAMES"
)

fails=0
json="["
sep=""
for w in "${WORKLOADS[@]}"; do
	IFS='|' read -r name source need cmd <<<"$w"
	out=$DIR/$name
	rm -rf "$out" && mkdir -p "$out"
	crc=0
	case "$name" in
	glmark2-*)
		# shellcheck disable=SC2086 # the scene list is split on purpose
		record_glmark2 "$out/glmark2.trace" $cmd >"$out/record.log" 2>&1 || crc=$?
		cmd="env WAFFLE_PLATFORM=surfaceless_egl eglretrace --headless $out/glmark2.trace"
		;;
	esac
	t0=$(date +%s.%N)
	if [ "$crc" = 0 ]; then
		# shellcheck disable=SC2086 # the command line is split on purpose
		(cd "$out" && "$TRACE" capture "$out" -- $cmd) >"$out/capture.log" 2>&1
		crc=$?
	fi
	t1=$(date +%s.%N)
	aub_mb=$(($(stat -c %s "$out/capture.aub" 2>/dev/null || echo 0) / 1048576))
	"$TRACE" analyze "$out" >"$out/analysis.jsonl" 2>"$out/analysis.log"
	arc=$?
	t2=$(date +%s.%N)
	# The replays the end-to-end tests run under QEMU (tests/vm-tests.sh):
	# packed from the capture before it goes.
	prc=0
	rm -f "$out/capture.replay"
	if [ "$arc" = 0 ] && [[ " ${REPLAYS[*]} " == *" $name "* ]]; then
		"$TRACE" pack "$out" "$out/capture.replay" >"$out/pack.log" 2>&1
		prc=$?
	fi
	[ -z "${GMIG_TRACE_KEEP:-}" ] && rm -f "$out/capture.aub"
	summary=$(grep -m1 '^{"summary"' "$out/analysis.jsonl" | sed -e 's/^{"summary": {//' -e 's/}}$//')
	field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$summary"; }
	verdict=ok
	why=""
	if [ "$crc" != 0 ]; then
		why="program exited $crc"
	elif [ "$arc" != 0 ] || [ -z "$summary" ]; then
		why="analysis failed: $(tail -1 "$out/analysis.log")"
	elif [ "$(field execbuffers)" = 0 ]; then
		why="no execbuffer"
	elif [ "$(field "$need")" = 0 ]; then
		why="no $need: the workload does not submit what it stands for"
	elif [ "$(field missed_bos)" != 0 ]; then
		why="$(field missed_bos) missed buffers"
	elif [ "$(field parser_mismatches)" != 0 ]; then
		why="$(field parser_mismatches) parser mismatches: $(grep -m1 'parser mismatch' "$out/analysis.log")"
	elif [ "$prc" != 0 ]; then
		why="pack failed: $(tail -1 "$out/pack.log")"
	fi
	if [ -n "$why" ]; then
		verdict=FAIL
		fails=$((fails + 1))
		tail -5 "$out/capture.log" | sed 's/^/    /'
	fi
	printf 'trace %s: %s execbuffers %s bounded %s (gvt %s) tracked %s flagged/interval %s candidates/interval %s missed %s mismatches %s commands %s draws %s dispatches %s; AUB %s MiB, capture %.1f s, analysis %.1f s%s\n' \
		"$name" "$verdict" "$(field execbuffers)" "$(field bounded)" "$(field bounded_gvt)" \
		"$(field tracked_pages)" "$(field flagged_pages)" "$(field candidate_pages)" \
		"$(field missed_bos)" "$(field parser_mismatches)" "$(field commands)" \
		"$(field draws)" "$(field dispatches)" "$aub_mb" \
		"$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "${why:+: $why}"
	json+="$sep{\"workload\": \"$name\", \"source\": \"$source\"${summary:+, $summary}}"
	sep=", "
done
mkdir -p "$(dirname "$RESULTS")"
echo "$json]" >"$RESULTS"
echo "traces: results in $RESULTS"
[ "$fails" = 0 ]
