# SPDX-License-Identifier: GPL-2.0
#
# gmig - live migration for mediated vGPUs.
#
#   make            build gmig.ko against the cached Rust-enabled 7.3 kernel
#   make check      set up, build, run every test (host, KUnit, kselftest, QEMU)
#   make demo       boot the test kernel and show gmig at work
#   make setup      install build dependencies and fetch the kernel source
#   make kernel     build (or reuse) the cached test kernel
#   make gvt-kernel the GVT-g flavour (i915, kvmgt, patches/gvt applied)
#   make gvt-check  gmig's gvt provider against that kernel's kvmgt
#   make print-kdir print the kernel build tree gmig.ko is built against
#   make lint       CLIPPY=1 build (an unsafe block without SAFETY: fails),
#                   rustfmt, no import cycle between parts (scripts/deps.py)
#                   and checkpatch; patches/gvt applies,
#                   is checkpatch clean and its hooks sit where they must
#                   (tests/gvt-series-check.sh, no GVT kernel needed);
#                   Documentation/*.rst parses without a docutils warning
#   make bench      host figures (page hash vs memcpy, tracker diff, remapper),
#                   then the kernel benchmark in the VM (scripts/bench.sh)
#   make bench-host the host figures only
#   make traces     the longer real-workload set: Mesa's iris on its stub
#                   Skylake, captured and analyzed (scripts/trace.sh),
#                   figures in out/traces/results.json
#
# Variables: GMIG_CACHE (default /var/cache/gmig), FLAVOUR (kernel flavour,
# default base), DEBUG=1 (debug kernel: KASAN, lockdep, kmemleak), LONG=1,
# HOSTILE_SECS=S (each provider's randomized hostile client runs S s, default
# 20), HOSTILE_SEED=N (replays a hostile run), LIBVIRT=0 (skips the two-host
# libvirt stage, tests/libvirt-migration.sh: about 3 minutes, 15-30 in the
# debug kernel), GVT_QEMU=0 (skips the QEMU tests on the gvt provider,
# against the kvmgt stand-in's mdev vGPUs: about 10 minutes).

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

SHELL := /bin/bash
GMIG_CACHE ?= /var/cache/gmig
export GMIG_CACHE
ifeq ($(DEBUG),1)
FLAVOUR ?= debug
endif
FLAVOUR ?= base
export FLAVOUR

KDIR = $(shell FLAVOUR=$(FLAVOUR) scripts/kernel.sh --print-kdir)
# The tree records the make variables it was built with (RUSTC, BINDGEN,
# LLVM for the debug flavour); the module must be built with the same ones.
KMAKE = source scripts/env.sh && $(MAKE) -C $(KDIR) M=$(CURDIR) $$(cat $(KDIR)/.gmig-make-vars)

.PHONY: all modules setup kernel gvt-kernel gvt-check check demo print-kdir lint clean host-test fuzz bench bench-host traces

all: modules

setup:
	@scripts/setup.sh

kernel: setup
	@scripts/kernel.sh

gvt-kernel: setup
	@FLAVOUR=gvt scripts/kernel.sh

gvt-check: gvt-kernel
	@scripts/gvt-check.sh

modules: kernel
	@$(KMAKE) W=1 modules
	@cp -f $(CURDIR)/gmig.ko gmig.ko 2>/dev/null || true

print-kdir:
	@echo $(KDIR)

host-test:
	@cd rust/gmig_core && cargo test

fuzz:
	@scripts/fuzz.sh

# Figures with ratios against baselines measured in the same run, checked
# against the design's targets (benches/figures.rs); not pass/fail.
bench-host:
	@cd rust/gmig_core && cargo bench -q --bench figures

# The kernel part: working sets of 64 MiB to 1 GiB, desktop and game,
# writeset vs gMig vs naive, in the test VM (about 15 minutes under TCG).
bench: setup bench-host
	@scripts/bench.sh

lint: kernel
	@$(KMAKE) CLIPPY=1 W=1 modules
	@cd rust/gmig_core && cargo fmt --check && cargo clippy --all-targets -- -D warnings
	@cd rust/gmig_trace && cargo fmt --check && cargo clippy --all-targets -- -D warnings
	@rustfmt --check --edition 2021 rust/gmig.rs
	@scripts/deps.py
	@source scripts/env.sh && perl $$KSRC/scripts/checkpatch.pl --no-tree --strict --terse -q -f shim/*.c shim/*.h tests/gvt-mock/*.c tests/gvt-mock/*.h
	@tests/gvt-series-check.sh
	@scripts/rst-check.py

check: setup
	@scripts/check.sh

traces: setup
	@scripts/trace.sh workloads traces "$(GMIG_CACHE)/traces/traces" "$(CURDIR)/out/traces/results.json"

demo: setup
	@scripts/demo.sh

clean:
	@if [ -d "$(KDIR)" ]; then $(KMAKE) clean; fi
	@rm -f gmig.ko

endif
