#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Short fuzz run of every target in rust/gmig_core/fuzz (cargo-fuzz,
# libFuzzer) on the stable toolchain (RUSTC_BOOTSTRAP=1 lets it use the
# sanitizer flags). Corpora and build outputs stay in the cache; the seed
# corpora are written fresh by examples/fuzz_seeds.rs each time.
# Usage: fuzz.sh [seconds per target, default 20]
#        FUZZ_RUNS=N fuzz.sh    (N executions per target instead)
#        FUZZ_TARGETS="a b" fuzz.sh   (only these targets)
# FUZZ_DIR (default $GMIG_CACHE/fuzz) holds build outputs, corpora, seeds
# and each target's last log (logs/<target>.log).
# Prints "fuzz <target>: <N> execs, 0 crashes (<S> s)" per target; exits
# non-zero on a crash or when a target did not run.
#
# Build: debug assertions and overflow checks on (-a: the kernel builds
# gmig with CONFIG_RUST_OVERFLOW_CHECKS, so an overflow there is a BUG),
# no sanitizer (-s none): gmig_core is #![forbid(unsafe_code)], so
# AddressSanitizer can find nothing the language does not already check,
# and it made every execution several times slower.
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
cd "$GMIG_ROOT/rust/gmig_core"
FUZZ_DIR=${FUZZ_DIR:-$GMIG_CACHE/fuzz}
SEEDS=$FUZZ_DIR/seeds
rm -rf "$SEEDS"
if ! cargo run -q --release --example fuzz_seeds -- "$SEEDS" >/dev/null; then
	echo "fuzz: writing the seed corpora failed"
	exit 1
fi
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$FUZZ_DIR/target
FLAGS=(-a -s none)
if [ -n "${FUZZ_RUNS:-}" ]; then
	LIMIT=-runs=$FUZZ_RUNS
else
	LIMIT=-max_total_time=$SECS
fi
rc=0
for t in ${FUZZ_TARGETS:-$("$FUZZ" list --fuzz-dir fuzz)}; do
	corpus=$FUZZ_DIR/corpus/$t
	log=$FUZZ_DIR/logs/$t.log
	mkdir -p "$corpus" "$SEEDS/$t" "$FUZZ_DIR/logs"
	"$FUZZ" run "${FLAGS[@]}" --fuzz-dir fuzz "$t" "$corpus" "$SEEDS/$t" -- \
		"$LIMIT" -rss_limit_mb=1024 >"$log" 2>&1
	frc=$?
	execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
	if [ $frc = 0 ] && [ -n "$execs" ]; then
		echo "fuzz $t: $execs execs, 0 crashes ($secs s)"
	else
		tail -30 "$log"
		echo "fuzz $t: FAILED (rc $frc)"
		rc=1
	fi
done
exit $rc
