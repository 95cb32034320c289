// SPDX-License-Identifier: GPL-2.0

//! Page hash and tracker figures, measured in one run against baselines
//! measured in the same run (so the ratios, not the absolute numbers, are
//! what to compare across machines). Prints; asserts nothing about time.
//!
//!   cargo bench --bench hash

use std::time::Instant;

use gmig_core::{
    hash::{fnv1a64, page_hash},
    planner::{decide, Action, DirtySource, Phase, Policy},
    tracker::{HashTracker, PAGE},
};

/// SipHash-1-3 keyed with (k0, k1): the conservative keyed baseline.
fn siphash13(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let (mut v0, mut v1, mut v2, mut v3) = (
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    );
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    };
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes(c.try_into().unwrap());
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let mut last = [0u8; 8];
    let r = chunks.remainder();
    last[..r.len()].copy_from_slice(r);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v3 ^= m;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= m;
    v2 ^= 0xff;
    for _ in 0..3 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

fn gib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / (1u64 << 30) as f64
}

fn time<F: FnMut() -> u64>(mut f: F) -> (f64, u64) {
    // Best of 5 runs.
    let mut best = f64::MAX;
    let mut sink = 0;
    for _ in 0..5 {
        let t = Instant::now();
        sink ^= f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, sink)
}

fn main() {
    let pages = 16 * 1024; // 64 MiB
    let mut mem = vec![0u8; pages * PAGE];
    let mut x = 0x1234_5678_9abc_def0u64;
    for b in mem.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes());
    }
    let bytes = mem.len();
    let (t_wy, s1) = time(|| mem.chunks_exact(PAGE).fold(0, |a, p| a ^ page_hash(7, p)));
    let (t_sip, s2) = time(|| {
        mem.chunks_exact(PAGE)
            .fold(0, |a, p| a ^ siphash13(7, 9, p))
    });
    let (t_fnv, s3) = time(|| mem.chunks_exact(PAGE).fold(0, |a, p| a ^ fnv1a64(p)));
    println!("page hash over 64 MiB of random pages (best of 5):");
    println!(
        "  page_hash (wyhash-style, seeded) {:6.2} GiB/s",
        gib_per_s(bytes, t_wy)
    );
    println!(
        "  siphash-1-3 (keyed)              {:6.2} GiB/s",
        gib_per_s(bytes, t_sip)
    );
    println!(
        "  fnv-1a 64 (unseeded)             {:6.2} GiB/s",
        gib_per_s(bytes, t_fnv)
    );
    println!(
        "  page_hash is {:.1}x siphash-1-3 and {:.1}x fnv-1a   (checksums {:x} {:x} {:x})",
        t_sip / t_wy,
        t_fnv / t_wy,
        s1 & 0xff,
        s2 & 0xff,
        s3 & 0xff
    );

    // Stop-copy: re-hash the whole tracked set, 5% of it changed.
    let mut t = HashTracker::new(0, 42, vec![0u64; pages]);
    for g in 0..pages as u64 {
        t.track(g).unwrap();
    }
    let mut scratch = [0u8; PAGE];
    t.scan_new(&mut scratch, |g, b| {
        b.copy_from_slice(&mem[g as usize * PAGE..][..PAGE]);
        Ok::<(), ()>(())
    });
    for g in (0..pages).step_by(20) {
        mem[g * PAGE + 100] ^= 1;
    }
    let start = Instant::now();
    let mut changed = 0u64;
    t.scan_changed(
        &mut scratch,
        |g, b| {
            b.copy_from_slice(&mem[g as usize * PAGE..][..PAGE]);
            Ok::<(), ()>(())
        },
        |_| changed += 1,
    );
    let scan = start.elapsed().as_secs_f64();
    let all = match decide(Policy::Oneshot, DirtySource::All, Phase::StopCopy) {
        Action::All => t.tracked(),
        _ => 0,
    };
    println!("stop-copy over a 64 MiB tracked set with 5% of its pages rewritten:");
    println!(
        "  re-hash scan {:.1} ms ({:.2} GiB/s); dirty=hash sends {} pages, dirty=all {} ({:.1}x fewer)",
        scan * 1e3,
        gib_per_s(bytes, scan),
        changed,
        all,
        all as f64 / changed as f64
    );
}
