#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Real Gen9 command streams from Mesa's iris driver, and gmig's analysis of
# them (Documentation/benchmarks.rst, "Real workloads").
#
#   scripts/trace.sh capture OUT -- COMMAND [ARGS...]
#       runs COMMAND with the distribution's iris on Mesa's stub i915 device
#       (a Skylake GT2 unless GMIG_TRACE_PLATFORM names another Mesa
#       platform) and writes the capture directory OUT: capture.aub (every
#       execbuffer's batches and the GPU memory they reference, from Mesa's
#       intel_dump_gpu), execlog (each execbuffer's object list with GPU
#       address, size and the driver's EXEC_OBJECT_WRITE flag, from
#       trace/execlog.c; trace/ctxid.c gives each GEM context its own id,
#       which the stub does not), gen9-commands.tsv (Mesa's description of the
#       commands) and info. The caller's LD_PRELOAD stays in effect. Exits
#       with COMMAND's status.
#   scripts/trace.sh analyze OUT [--interval N]
#       prints one JSON line per execbuffer, then {"summary": {...}}
#       (rust/gmig_trace). N: execbuffers per report interval (default 1).
#   scripts/trace.sh pack OUT FILE [--max-pages N] [--execs N]
#       packs the capture's render execbuffers as the replay file FILE
#       (rust/gmig_core/src/replay.rs) for the sim vGPU to run: at most N
#       mapped pages or N execbuffers (the longest prefix that fits); prints
#       "pack: contexts C execs E mapped_pages M ..." (rust/gmig_trace/src/pack.rs).
#   scripts/trace.sh workloads [check|traces] [DIR]
#       captures and analyzes the built-in workload set (trace/workloads.sh)
#       under DIR (default $GMIG_CACHE/traces), prints one result line per
#       workload and writes DIR/results.json.
#
# Needs the set-up (scripts/setup.sh builds Mesa's tools: scripts/mesa.sh).
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() {
	echo "trace.sh: $*" >&2
	exit 2
}

# rustup's toolchain builds host code (env.sh puts Debian's rustc first).
HOST_PATH=$HOME/.cargo/bin:$PATH
TRACE_CACHE=$GMIG_CACHE/trace

# trace/NAME.c as an LD_PRELOAD library, built once per source change.
preload_so() {
	local so=$TRACE_CACHE/$1.so src=$GMIG_ROOT/trace/$1.c
	if [ ! -f "$so" ] || [ "$src" -nt "$so" ]; then
		mkdir -p "$TRACE_CACHE"
		cc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$so.tmp" "$src" -ldl -lpthread
		mv "$so.tmp" "$so"
	fi
	echo "$so"
}

# The analyzer (rust/gmig_trace), built in the cache.
analyzer() {
	local target=$TRACE_CACHE/target
	(cd "$GMIG_ROOT/rust/gmig_trace" &&
		PATH=$HOST_PATH CARGO_TARGET_DIR=$target cargo build -q --release) >&2 ||
		die "building rust/gmig_trace failed"
	echo "$target/release/gmig-trace"
}

capture() {
	[ $# -ge 3 ] && [ "$2" = -- ] || die "usage: trace.sh capture OUT -- COMMAND [ARGS...]"
	local out=$1
	shift 2
	local tools table so ctxid
	tools=$("$GMIG_ROOT/scripts/mesa.sh" --print)
	table=$("$GMIG_ROOT/scripts/mesa.sh" --table)
	[ -f "$tools/libintel_noop_drm_shim.so" ] && [ -f "$tools/libintel_dump_gpu.so" ] &&
		[ -f "$table" ] || die "Mesa's stub device is not built: run make setup (scripts/mesa.sh)"
	so=$(preload_so execlog)
	ctxid=$(preload_so ctxid)
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	rm -f "$out/capture.aub" "$out/execlog"
	cp "$table" "$out/gen9-commands.tsv"
	printf 'file=%s\n' "$out/capture.aub" >"$out/dump.cfg"
	local platform=${GMIG_TRACE_PLATFORM:-skl} rc=0
	{
		echo "platform $platform"
		echo "mesa $(dpkg-query -W -f='${Version}' libgl1-mesa-dri)"
		echo "command $*"
	} >"$out/info"
	INTEL_DUMP_GPU_CONFIG=$out/dump.cfg INTEL_STUB_GPU_PLATFORM=$platform \
		GMIG_EXECLOG=$out/execlog \
		LD_PRELOAD="$so:$tools/libintel_dump_gpu.so:$ctxid:$tools/libintel_noop_drm_shim.so${LD_PRELOAD:+:$LD_PRELOAD}" \
		"$@" || rc=$?
	echo "status $rc" >>"$out/info"
	# A program that never submitted leaves no AUB: an empty capture.
	[ -f "$out/capture.aub" ] || : >"$out/capture.aub"
	[ -f "$out/execlog" ] || : >"$out/execlog"
	return "$rc"
}

# The analyzer's COMMAND on the capture OUT: on_capture COMMAND OUT [ARGS...]
on_capture() {
	local cmd=$1 out=$2 bin
	shift 2
	[ -f "$out/capture.aub" ] || die "$out: no capture.aub (trace.sh capture writes it)"
	bin=$(analyzer)
	"$bin" "$cmd" "$out" "$@"
}

analyze() {
	[ $# -ge 1 ] || die "usage: trace.sh analyze OUT [--interval N]"
	on_capture analyze "$@"
}

pack() {
	[ $# -ge 2 ] || die "usage: trace.sh pack OUT FILE [--max-pages N] [--execs N]"
	on_capture pack "$@"
}

case "${1:-}" in
capture) shift; capture "$@" ;;
analyze) shift; analyze "$@" ;;
pack) shift; pack "$@" ;;
workloads) shift; exec "$GMIG_ROOT/trace/workloads.sh" "$@" ;;
*) die "usage: trace.sh capture OUT -- COMMAND [ARGS...] | analyze OUT | pack OUT FILE | workloads [check|traces] [DIR]" ;;
esac
