#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Short fuzz run of every target in rust/gmig_core/fuzz (cargo-fuzz,
# libFuzzer) on the stable toolchain (RUSTC_BOOTSTRAP=1 lets it use the
# sanitizer flags). Corpora and build outputs stay in the cache.
# Usage: fuzz.sh [seconds per target, default 20]
# Prints "fuzz <target>: <N> execs, 0 crashes" per target; exits non-zero
# on a crash or when a target did not run.
set -uo pipefail
. "$(dirname "$0")/env.sh"
SECS=${1:-20}
# rustup's toolchain builds host code (env.sh puts Debian's rustc first
# for the kernel).
export PATH=$HOME/.cargo/bin:$PATH
FUZZ=$GMIG_CACHE/cargo/bin/cargo-fuzz
if [ ! -x "$FUZZ" ]; then
	echo "fuzz: installing cargo-fuzz"
	cargo install --locked --root "$GMIG_CACHE/cargo" cargo-fuzz >/dev/null 2>&1 || exit 1
fi
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$GMIG_CACHE/fuzz/target
cd "$GMIG_ROOT/rust/gmig_core"
rc=0
for t in $("$FUZZ" list --fuzz-dir fuzz); do
	corpus=$GMIG_CACHE/fuzz/corpus/$t
	mkdir -p "$corpus"
	log=$(mktemp)
	"$FUZZ" run --fuzz-dir fuzz "$t" "$corpus" -- -max_total_time="$SECS" \
		-rss_limit_mb=1024 >"$log" 2>&1
	frc=$?
	execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	if [ $frc = 0 ] && [ -n "$execs" ]; then
		echo "fuzz $t: $execs execs, 0 crashes"
	else
		tail -30 "$log"
		echo "fuzz $t: FAILED (rc $frc)"
		rc=1
	fi
	rm -f "$log"
done
exit $rc
