// SPDX-License-Identifier: GPL-2.0

//! gmig's pure logic, written against `core` only.
//!
//! This file is both the root of the host crate `gmig_core` (built by cargo for
//! tests, benchmarks and fuzzing) and, through `#[path]`, the `gmig_core` module
//! inside `gmig.ko`. Code in here therefore never names `crate::`: sibling
//! modules are reached through `super::`, and nothing uses `std`, `alloc` or
//! `kernel`.
#![cfg_attr(not(CONFIG_RUST), no_std)]
#![forbid(unsafe_code)]

#[cfg(all(test, not(CONFIG_RUST)))]
extern crate std;
/// Reader of AUB files (Mesa's GPU command-stream traces).
pub mod aub;
/// Named bit fields of hardware values.
pub mod bits;
/// Gen8/9 command-buffer parser.
pub mod cmd;
/// The dirty log of a migration: reports and the stop-copy re-hash.
pub mod dirtylog;
/// GPU-writable frames outside the tracker's window.
pub mod farframes;
/// Gen8/9 GTT entries and GGTT partitions.
pub mod gtt;
/// The GVT-g provider's pure parts (layout, hook events, state image).
pub mod gvt;
/// Seeded page hashes.
pub mod hash;
/// Guest memory as a vGPU reaches it.
pub mod mem;
/// How the tracker reads the guest pages it hashes (batches, runs, sources).
pub mod pageread;
/// Pre-copy policies and per-report decisions.
pub mod planner;
/// The provider interface and shadow page table events.
pub mod provider;
/// Rate limits of guest-triggerable log lines.
pub mod ratelimit;
/// Dynamic graphics address remapping.
pub mod remap;
/// Replay files: captured GPU workloads packed for a vGPU to run.
pub mod replay;
/// The sim provider's device model.
pub mod sim;
/// GGTT partition slots of the sim parent device.
pub mod slots;
/// The migration stream codec.
pub mod stream;
/// Helpers for tests, benches and fuzzing (PRNG, AUB writer).
pub mod testutil;
/// The software dirty-page tracker.
pub mod tracker;
/// VFIO migration uAPI values, typed.
pub mod vfio;
/// The write-set recorder (frames executed commands may have written).
pub mod writeset;
