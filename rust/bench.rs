// SPDX-License-Identifier: GPL-2.0

//! Benchmark mode (`insmod gmig.ko bench=1`): at load, hashes and copies the
//! same pages in the kernel, timed with the monotonic clock, and prints one
//! line:
//!
//! ```text
//! gmig: bench: page_hash 0.03 GB/s, memcpy 0.06 GB/s, hash/memcpy 50 % (4096 pages, best of 5, checksum fc)
//! ```
//!
//! (That line is from the test kernel under QEMU's TCG, one vCPU: the
//! emulated 64x64->128 multiply makes hashing slow there; on hardware the
//! host figures, `make bench`, are the guide.) The host figures compare the
//! same two things; this is the kernel's view (vmalloc'd pages, the
//! kernel's memcpy). Nothing else of the module changes with `bench`, which
//! is read at load only (it is not in sysfs).

use core::hint::black_box;

use kernel::{
    prelude::*,
    time::{Instant, Monotonic}, //
};

use crate::gmig_core::{hash::page_hash, testutil::Rng, tracker::PAGE};

/// Pages hashed and copied per run (16 MiB: more than the caches).
const PAGES: usize = 4096;
/// Runs; the best is reported.
const RUNS: usize = 5;

/// Bytes per nanosecond times 100 (GB/s with two decimals).
fn gb_s_x100(bytes: usize, ns: i64) -> u64 {
    let ns = u64::try_from(ns).unwrap_or(1).max(1);
    let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
    bytes.saturating_mul(100) / ns
}

/// Runs the benchmark and prints its line.
pub(crate) fn run() -> Result {
    let bytes = PAGES * PAGE;
    let mut src = KVVec::from_elem(0u8, bytes, GFP_KERNEL)?;
    let mut dst = KVVec::from_elem(0u8, bytes, GFP_KERNEL)?;
    Rng::new(1).fill(&mut src);
    Rng::new(2).fill(&mut dst);
    let (mut copy_ns, mut hash_ns) = (i64::MAX, i64::MAX);
    let mut sink = 0u64;
    for _ in 0..RUNS {
        // Index loops (see workload.rs on chunks_exact_mut().zip()).
        let t = Instant::<Monotonic>::now();
        for i in 0..PAGES {
            let r = i * PAGE..(i + 1) * PAGE;
            if let (Some(d), Some(s)) = (dst.get_mut(r.clone()), black_box(&src[..]).get(r)) {
                d.copy_from_slice(s);
                black_box(d);
            }
        }
        copy_ns = copy_ns.min(t.elapsed().as_nanos());
        let t = Instant::<Monotonic>::now();
        let mut h = 0u64;
        for i in 0..PAGES {
            if let Some(p) = black_box(&src[..]).get(i * PAGE..(i + 1) * PAGE) {
                h ^= page_hash(7, p);
            }
        }
        hash_ns = hash_ns.min(t.elapsed().as_nanos());
        sink ^= black_box(h);
    }
    if dst[..] != src[..] {
        pr_err!("bench: memcpy did not copy\n");
        return Err(EINVAL);
    }
    let (hash, copy) = (gb_s_x100(bytes, hash_ns), gb_s_x100(bytes, copy_ns));
    let pct = hash.saturating_mul(100) / copy.max(1);
    pr_info!(
        "bench: page_hash {}.{:02} GB/s, memcpy {}.{:02} GB/s, hash/memcpy {} % ({} pages, best of {}, checksum {:x})\n",
        hash / 100,
        hash % 100,
        copy / 100,
        copy % 100,
        pct,
        PAGES,
        RUNS,
        sink & 0xff
    );
    Ok(())
}
