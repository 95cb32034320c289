// SPDX-License-Identifier: GPL-2.0

//! Benchmark mode (`insmod gmig.ko bench=1`): at load, hashes and copies the
//! same pages in the kernel, timed with the monotonic clock, and prints one
//! line:
//!
//! ```text
//! gmig: bench: page_hash speed / page-to-page copy, 15 interleaved rounds of 4096 pages: median 52 %, spread 49-55 % (best: page_hash 0.03 GB/s, copy 0.06 GB/s; checksum fc)
//! ```
//!
//! Each round copies the 16 MiB page by page and hashes them back to back,
//! alternating which goes first, so that the machine's drift falls on both;
//! the ratio of each round is one sample, and the line gives their median
//! and spread (one best-of-N pair moves too much from run to run to say
//! anything). Under QEMU's TCG (the test VM) the emulated 64x64->128
//! multiply makes hashing slow; on hardware the host figures (`make bench`)
//! are the guide. The host figures compare the same two things the same
//! way; this is the kernel's view (vmalloc'd pages, the kernel's memcpy).
//! Nothing else of the module changes with `bench`, which is read at load
//! only (it is not in sysfs).

use core::hint::black_box;

use kernel::{
    prelude::*,
    time::{Instant, Monotonic}, //
};

use crate::gmig_core::{hash::page_hash, testutil::Rng, tracker::PAGE};

/// Pages hashed and copied per run (16 MiB: more than the caches).
const PAGES: usize = 4096;
/// Interleaved rounds; their median and spread are reported.
const ROUNDS: usize = 15;

/// Bytes per nanosecond times 100 (GB/s with two decimals).
fn gb_s_x100(bytes: usize, ns: i64) -> u64 {
    let ns = u64::try_from(ns).unwrap_or(1).max(1);
    let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
    bytes.saturating_mul(100) / ns
}

/// Copies `src` to `dst` a page at a time; returns the nanoseconds taken.
fn copy_pages(dst: &mut [u8], src: &[u8]) -> i64 {
    let t = Instant::<Monotonic>::now();
    // Index loops (see workload.rs on chunks_exact_mut().zip()).
    for i in 0..PAGES {
        let r = i * PAGE..(i + 1) * PAGE;
        if let (Some(d), Some(s)) = (dst.get_mut(r.clone()), black_box(src).get(r)) {
            d.copy_from_slice(s);
            black_box(d);
        }
    }
    t.elapsed().as_nanos()
}

/// Hashes `src` a page at a time; returns the nanoseconds taken and the
/// hashes folded together.
fn hash_pages(src: &[u8]) -> (i64, u64) {
    let t = Instant::<Monotonic>::now();
    let mut h = 0u64;
    for i in 0..PAGES {
        if let Some(p) = black_box(src).get(i * PAGE..(i + 1) * PAGE) {
            h ^= page_hash(7, p);
        }
    }
    (t.elapsed().as_nanos(), black_box(h))
}

/// Runs the benchmark and prints its line.
pub(crate) fn run() -> Result {
    let bytes = PAGES * PAGE;
    let mut src = KVVec::from_elem(0u8, bytes, GFP_KERNEL)?;
    let mut dst = KVVec::from_elem(0u8, bytes, GFP_KERNEL)?;
    Rng::new(1).fill(&mut src);
    Rng::new(2).fill(&mut dst);
    // Hash speed over copy speed of each round, in percent.
    let mut pct = [0u64; ROUNDS];
    let (mut copy_ns, mut hash_ns) = (i64::MAX, i64::MAX);
    let mut sink = 0u64;
    for (r, p) in pct.iter_mut().enumerate() {
        let (tc, (th, h)) = if r % 2 == 0 {
            let c = copy_pages(&mut dst, &src);
            (c, hash_pages(&src))
        } else {
            let h = hash_pages(&src);
            (copy_pages(&mut dst, &src), h)
        };
        sink ^= h;
        copy_ns = copy_ns.min(tc);
        hash_ns = hash_ns.min(th);
        let (tc, th) = (
            u64::try_from(tc).unwrap_or(0),
            u64::try_from(th).unwrap_or(0),
        );
        *p = tc.saturating_mul(100) / th.max(1);
    }
    if dst[..] != src[..] {
        pr_err!("bench: memcpy did not copy\n");
        return Err(EINVAL);
    }
    pct.sort_unstable();
    let (hash, copy) = (gb_s_x100(bytes, hash_ns), gb_s_x100(bytes, copy_ns));
    pr_info!(
        "bench: page_hash speed / page-to-page copy, {} interleaved rounds of {} pages: median {} %, spread {}-{} % (best: page_hash {}.{:02} GB/s, copy {}.{:02} GB/s; checksum {:x})\n",
        ROUNDS,
        PAGES,
        pct[ROUNDS / 2],
        pct[0],
        pct[ROUNDS - 1],
        hash / 100,
        hash % 100,
        copy / 100,
        copy % 100,
        sink & 0xff
    );
    Ok(())
}
