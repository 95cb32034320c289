#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test gmig has, from a fresh Debian 12 machine.
#   1. host: cargo test of the core crate, and a short fuzz run
#   2. build: cached kernel, gmig.ko (warnings are errors), samples, selftests,
#      the mock kvmgt (tests/gvt-mock)
#   3. VM: boot the kernel with virtme-ng, load gmig (KUnit runs), kselftests,
#      end-to-end QEMU migrations, dmesg free of splats
# Ends with "N passed, N failed" counting every test (host + KUnit +
# kselftest + VM). Exit status 0 only if nothing failed and the VM finished.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$GMIG_ROOT"

OUT=${GMIG_OUT:-$GMIG_ROOT/out}
rm -rf "$OUT" && mkdir -p "$OUT"
passed=0 failed=0 skipped=0
failures=()
pass() { passed=$((passed + $1)); }
fail() { failed=$((failed + $1)); failures+=("$2"); }
step() { printf '\n== %s\n' "$*"; }
# Host stages are timed so the summary shows where CI's minutes go.
t0=$(date +%s)

step "host: cargo test (gmig_core, gmig_trace)"
# rustup's toolchain builds the host crate (env.sh puts /usr/bin first for
# the kernel; cargo itself is rustup's).
HOST_PATH=$HOME/.cargo/bin:$PATH
# The core crate, and the real-workload analyzer built on it.
if (for c in gmig_core gmig_trace; do (cd rust/$c && PATH=$HOST_PATH cargo test 2>&1); done) |
	tee "$OUT/host-test.log" | grep -E '^(test result|running|error)'; then :; fi
host_ok=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i-1) } END { print s + 0 }' "$OUT/host-test.log")
host_bad=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i-1) } END { print s + 0 }' "$OUT/host-test.log")
pass "$host_ok"
[ "$host_bad" = 0 ] || fail "$host_bad" "host tests"
if [ "$host_ok" = 0 ] || ! grep -q '^test result: ok' "$OUT/host-test.log" ||
	grep -q '^test result: FAILED' "$OUT/host-test.log"; then
	[ "$host_bad" != 0 ] || fail 1 "host tests did not run"
fi
echo "host: $host_ok passed, $host_bad failed"

step "host: benchmarks (figures, not pass/fail)"
# The verdict lines only; the whole report (make bench) is in bench.log.
(cd rust/gmig_core && PATH=$HOST_PATH cargo bench -q --bench figures 2>&1) >"$OUT/bench.log"
grep -E 'target|siphash-1-3 and|remap_buffer|dirty=all' "$OUT/bench.log" || tail -5 "$OUT/bench.log"

if [ -x scripts/fuzz.sh ]; then
	step "host: short fuzz run"
	PATH=$HOST_PATH scripts/fuzz.sh "${FUZZ_SECONDS:-15}" >"$OUT/fuzz.log" 2>&1
	frc=$?
	grep -E '^fuzz ' "$OUT/fuzz.log"
	n=$(grep -cE '^fuzz [a-z_]+: [0-9]+ execs, 0 crashes' "$OUT/fuzz.log")
	if [ "$frc" = 0 ] && [ "$n" -gt 0 ]; then pass "$n"; else tail -30 "$OUT/fuzz.log"; fail 1 "fuzz"; fi
fi

step "host: real workloads (Mesa's iris on its stub Skylake, scripts/trace.sh)"
# Captures stay in the cache (the AUB files are large and deleted once
# analyzed); the figures go to $OUT/traces/results.json.
scripts/trace.sh workloads check "$GMIG_CACHE/traces/check" "$OUT/traces/results.json" \
	>"$OUT/traces.log" 2>&1
grep -E '^trace ' "$OUT/traces.log"
nt=0
while read -r _ name verdict _; do
	nt=$((nt + 1))
	if [ "$verdict" = ok ]; then pass 1; else fail 1 "trace ${name%:}"; fi
done < <(grep -E '^trace [a-z0-9-]+: ' "$OUT/traces.log")
[ "$nt" -gt 0 ] || { tail -20 "$OUT/traces.log"; fail 1 "traces did not run"; }
t_host=$(date +%s)

step "build: kernel (cached), gmig.ko, selftests, samples, gvt mock"
if ! scripts/kernel.sh; then
	fail 1 "kernel build"
	echo "$passed passed, $failed failed"
	exit 1
fi
KDIR=$(scripts/kernel.sh --print-kdir)
t_kernel=$(date +%s)
if make -s modules >"$OUT/module-build.log" 2>&1 && [ -f gmig.ko ] &&
	! grep -qE 'warning|error' "$OUT/module-build.log"; then
	pass 1
	echo "gmig.ko built ($(stat -c %s gmig.ko) bytes)"
else
	cat "$OUT/module-build.log"
	fail 1 "gmig.ko build (warnings are errors)"
fi
if make -s -C selftests KSRC="$KSRC" KDIR="$KDIR" OUTPUT="$OUT/selftests" >"$OUT/selftests-build.log" 2>&1; then
	pass 1
else
	cat "$OUT/selftests-build.log"
	fail 1 "selftests build"
fi
if [ -d samples ]; then
	if make -s -C samples KDIR="$KDIR" OUTPUT="$OUT/samples" >"$OUT/samples-build.log" 2>&1; then
		pass 1
	else
		cat "$OUT/samples-build.log"
		fail 1 "samples build"
	fi
fi
# The mock kvmgt the VM tests run gmig's gvt provider against (tests/gvt-mock).
if make -s -C "$KDIR" M="$GMIG_ROOT/tests/gvt-mock" MO="$OUT/gvt-mock" \
	$(cat "$KDIR/.gmig-make-vars") W=1 modules >"$OUT/gvt-mock-build.log" 2>&1 &&
	[ -f "$OUT/gvt-mock/gvt_mock.ko" ]; then
	pass 1
else
	cat "$OUT/gvt-mock-build.log"
	fail 1 "gvt-mock build"
fi

step "vm: boot $KDIR under virtme-ng (TCG) and run the in-kernel tests"
vmlog=$OUT/vm.log
# HOSTILE_SECS=S runs each provider's randomized hostile client for S s
# (default 20; the VM's time limit grows by twice that), HOSTILE_SEED=N
# replays one run. The kernel log holds 32 MiB: a long hostile run's
# (rate-limited) lines must not push a splat out before dmesg is checked.
hostile=${HOSTILE_SECS:-20}
# The two-host libvirt stage (tests/libvirt-migration.sh) takes about 3
# minutes in the base kernel and 15-30 in the debug one; LIBVIRT=0 skips it.
libvirt=${LIBVIRT:-1}
extra=0
if [ "$libvirt" = 1 ]; then
	extra=600
	[ "$FLAVOUR" = debug ] && extra=2400
fi
# The QEMU tests again on gmig's gvt provider, against gvt_mock's mdev
# vGPUs (about 10 minutes in the base kernel); GVT_QEMU=0 skips them.
gvt_qemu=${GVT_QEMU:-1}
if [ "$gvt_qemu" = 1 ]; then
	extra=$((extra + 900))
	[ "$FLAVOUR" = debug ] && extra=$((extra + 2700))
fi
# The real-workload replays under QEMU (tests/vm-tests.sh): about 6 min.
extra=$((extra + 480))
flock "$VM_LOCK" timeout "${VM_TIMEOUT:-$((2400 + 2 * hostile + extra))}" "$VNG" --run "$KDIR/arch/x86/boot/bzImage" \
	--disable-kvm --disable-microvm --memory 2G --cpus 2 --rodir "$GMIG_CACHE" \
	--append log_buf_len=32M \
	--rwdir "$OUT" --exec "${LONG:+GMIG_LONG=1} GMIG_REPLAY_DIR=$GMIG_CACHE/traces/check GMIG_LIBVIRT=$libvirt GMIG_GVT_QEMU=$gvt_qemu GMIG_HOSTILE_SECS=$hostile ${HOSTILE_SEED:+GMIG_HOSTILE_SEED=$HOSTILE_SEED} bash $GMIG_ROOT/tests/vm-tests.sh $KDIR $OUT" \
	</dev/null >"$vmlog" 2>&1
vmrc=$?
grep -E '^GMIG-RESULT|^    ' "$vmlog" | grep -vE '^    (ok|#)' | head -400
while read -r _ status name; do
	case "$status" in
	pass) pass 1 ;;
	skip) skipped=$((skipped + 1)) ;;
	*) fail 1 "$name" ;;
	esac
done < <(grep -E '^GMIG-RESULT ' "$vmlog")
if ! grep -q '^GMIG-VM-DONE' "$vmlog"; then
	tail -40 "$vmlog"
	fail 1 "vm did not finish (vng rc=$vmrc)"
fi
t_vm=$(date +%s)

# gvt provider against a patched kvmgt (scripts/gvt-check.sh), only where
# the gvt kernel flavour has been built.
step "gvt: gmig's gvt provider with kvmgt (patches/gvt)"
if [ -f "$(FLAVOUR=gvt scripts/kernel.sh --print-kdir)/.gmig-built" ]; then
	GMIG_OUT=$OUT scripts/gvt-check.sh >"$OUT/gvt-check.log" 2>&1
	gvtrc=$?
	grep -E '^GMIG-RESULT|^    |^gvt: ' "$OUT/gvt-check.log"
	gvtbad=0
	while read -r _ status name; do
		if [ "$status" = pass ]; then pass 1; else fail 1 "$name"; gvtbad=1; fi
	done < <(grep -E '^GMIG-RESULT ' "$OUT/gvt-check.log")
	if [ "$gvtrc" != 0 ] && [ "$gvtbad" = 0 ]; then
		tail -20 "$OUT/gvt-check.log"
		fail 1 "gvt-check (rc=$gvtrc)"
	fi
else
	echo "skipped: gvt kernel not built (make kernel FLAVOUR=gvt)"
fi

step "summary"
echo "time: host $((t_host - t0)) s, kernel $((t_kernel - t_host)) s, module+vm $((t_vm - t_kernel)) s"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
[ "$skipped" = 0 ] || echo "skipped: $skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
