#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs each gmig-gl workload on Mesa's stub i915 device (scripts/mesa.sh)
# with INTEL_DEBUG=bat, which makes iris decode every batch it submits, and
# on llvmpipe. One line per workload: execbuffers and the commands that
# matter to the write-set analysis. Fails if a workload exits non-zero, runs
# on another renderer, or its batches lack the commands it exists for.
#
#   trace/workloads/check.sh GMIG_GL [FRAMES]
set -euo pipefail

gl=$1
frames=${2:-3}
tools=$("$(dirname "$0")/../../scripts/mesa.sh" --print)
shim=$tools/libintel_noop_drm_shim.so
skl="Mesa Intel(R) HD Graphics 530 (SKL GT2)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0

# The commands a workload must submit, as NAME=MIN (per run).
declare -A need=(
	[desktop]="3DPRIMITIVE=$((frames * 11))"
	[game]="3DPRIMITIVE=$((frames * 8)) 3DSTATE_INDEX_BUFFER=1 3DSTATE_WM_HZ_OP=$frames"
	[compute]="GPGPU_WALKER=$((frames * 5)) MI_LOAD_REGISTER_MEM=3"
	[video]="3DPRIMITIVE=$((frames * 3))"
)

for w in desktop game compute video; do
	log=$out/$w
	start=$EPOCHREALTIME
	rc=0
	INTEL_DEBUG=bat INTEL_STUB_GPU_PLATFORM=skl LD_PRELOAD=$shim \
		"$gl" "$w" "$frames" >"$log" 2>&1 || rc=$?
	secs=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }")
	if [ $rc -ne 0 ]; then
		echo "gmig-gl check: $w: FAIL: exit status $rc on the stub"
		grep gmig-gl "$log" || true
		fail=1
		continue
	fi
	if ! grep -qF "gmig-gl: $w: $frames frames on $skl" "$log"; then
		echo "gmig-gl check: $w: FAIL: not on $skl"
		fail=1
		continue
	fi
	# "render batch [1] flush with ..." heads each execbuffer; a decoded
	# command starts "0xADDRESS:  0xDWORD:  NAME".
	counts=$(awk '
		/ batch \[[0-9]+\] flush with / { n++ }
		$1 ~ /^0x[0-9a-f]+:$/ && $2 ~ /^0x[0-9a-f]+:$/ { c[$3]++ }
		END {
			printf "execbuffers=%d", n
			split("3DPRIMITIVE GPGPU_WALKER 3DSTATE_WM_HZ_OP " \
			      "3DSTATE_INDEX_BUFFER MI_LOAD_REGISTER_MEM " \
			      "MEDIA_VFE_STATE PIPE_CONTROL", k, " ")
			for (i = 1; i in k; i++)
				printf " %s=%d", k[i], c[k[i]]
		}' "$log")
	status=
	for req in "execbuffers=$frames" ${need[$w]}; do
		name=${req%=*}
		got=$(tr ' ' '\n' <<<"$counts" | sed -n "s/^$name=//p")
		if [ "${got:-0}" -lt "${req#*=}" ]; then
			status+="FAIL: $name=${got:-0} < ${req#*=}; "
			fail=1
		fi
	done
	echo "gmig-gl check: $w: ${status:-ok: }$counts, ${secs}s with INTEL_DEBUG=bat"

	if ! LIBGL_ALWAYS_SOFTWARE=1 "$gl" "$w" "$frames" >"$log" 2>&1; then
		echo "gmig-gl check: $w: FAIL on llvmpipe:"
		cat "$log"
		fail=1
	fi
done
exit $fail
