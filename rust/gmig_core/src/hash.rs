// SPDX-License-Identifier: GPL-2.0

//! Seeded 64-bit page hashes for software dirty-page detection.
//!
//! [`page_hash`] is a wyhash-style multiply-fold hash: four 64-bit lanes
//! each take 16 bytes per 64-byte block, XOR them with the lane's state and
//! a seed-derived key, multiply them into a 128-bit product whose halves
//! are folded (the "mum" step); the lanes are folded together at the end.
//! It needs no SIMD and no FPU (a 64x64->128 multiply is one `mul` on
//! x86-64), reads each byte once, and mixes every input bit into every
//! output bit.
//!
//! Chance of a missed change: the seed is fresh and secret per migration
//! (from the kernel's RNG), and every multiply has a factor that depends on
//! it, so a guest cannot precompute colliding contents; for a changed page
//! the stored and new hash then agree with probability about 2^-64 per
//! comparison (a tracked 64 MiB working set compared at stop-copy misses a
//! changed page with probability below 2^-50). The tracker maps hash
//! values 0 and 1 to 2 and 3 (they mark untracked and not-yet-hashed
//! slots), which doubles the collision chance for those two values only.
//!
//! Why this one: `make bench` (benches/figures.rs) hashes 64 MiB of random
//! pages with three candidates and copies the same pages, in one run, on
//! one core. Measured on this project's machine (2 vCPUs, x86-64, shared
//! with other jobs, so absolute figures varied up to 2x, ratios less):
//! `page_hash` 5.7-10.3 GB/s, 166-195 % of a page-to-page memcpy
//! (2.9-5.6 GB/s) and 85-95 % of a copy into one 4 KiB buffer (reads
//! only); SipHash-1-3 1.6-2.8 GB/s (keyed, the conservative choice,
//! 3.0-4.6x slower); FNV-1a 0.34-0.61 GB/s (byte-serial and unkeyed,
//! 14-24x slower). `page_hash` is keyed like SipHash, passes the avalanche,
//! single-bit-flip and public-constant tests below, and is as fast as
//! reading the memory: the tracker's re-hash is bound by memory bandwidth,
//! not by the hash. (The two-lane form it replaced ran at half the speed
//! from cache and let a guest wipe the seed, see [`page_hash`].)
//!
//! [`fnv1a64`] (byte-serial, unseeded) is kept as the baseline the
//! benchmark compares against.

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn rd64(c: &[u8], i: usize) -> u64 {
    le64(c.get(i..).unwrap_or(&[]))
}

/// Seeded 64-bit hash of `data` (any length; pages are 4096 bytes).
///
/// Four independent lanes take 16 bytes each per 64-byte block, so four
/// multiplies are in flight at once (the old two-lane form was bound by the
/// multiply latency). Each lane step is `s = mum(a ^ s, b ^ k)` with `k` a
/// per-lane key derived from the seed: neither factor can be made zero by
/// a guest that does not know the seed. (A step of the form
/// `mum(a ^ CONSTANT, b ^ s)` can: a guest writing the public constant wipes
/// the lane, seed included, and can then build pages that collide whatever
/// the seed; see the test `public_constants_do_not_wipe_the_seed`.)
pub fn page_hash(seed: u64, data: &[u8]) -> u64 {
    let k = keys(seed);
    let mut s = lanes(&k);
    let mut blocks = data.chunks_exact(64);
    for c in &mut blocks {
        block(&mut s, &k, |i| rd64(c, 8 * i));
    }
    let mut h = fold(&s, &k);
    for c in blocks.remainder().chunks(16) {
        h = mum(rd64(c, 0) ^ h, rd64(c, 8) ^ k[1]);
    }
    mum(h ^ P3, (data.len() as u64) ^ k[0])
}

/// Bytes of the page [`page_hash_words`] hashes.
pub const PAGE_BYTES: usize = 4096;

/// [`page_hash`] of one 4096-byte page given as its 512 little-endian
/// 8-byte words: `word(i)` returns word `i` (bytes `8 * i..8 * i + 8`),
/// and is called exactly once per word, in increasing order.
///
/// This is how a page that someone else may write while it is hashed (a
/// guest page, hashed in place during pre-copy) is read: the caller's
/// `word` does one volatile 8-byte load, never a `&[u8]` over memory that
/// is not the caller's, and each word's value is then one value the word
/// held (a write racing with the hash makes the hash that of a mix of old
/// and new words, and the page is re-hashed when the write set says it
/// was written). The result equals `page_hash(seed, page)` for the same
/// bytes.
#[inline(always)]
pub fn page_hash_words(seed: u64, mut word: impl FnMut(usize) -> u64) -> u64 {
    let k = keys(seed);
    let mut s = lanes(&k);
    for b in 0..PAGE_BYTES / 64 {
        block(&mut s, &k, |i| word(8 * b + i));
    }
    mum(fold(&s, &k) ^ P3, (PAGE_BYTES as u64) ^ k[0])
}

/// The per-lane keys derived from `seed`.
#[inline(always)]
fn keys(seed: u64) -> [u64; 4] {
    [
        mum(seed ^ P0, P1),
        mum(seed ^ P1, P2),
        mum(seed ^ P2, P3),
        mum(seed ^ P3, P0),
    ]
}

/// The lanes' initial state.
#[inline(always)]
fn lanes(k: &[u64; 4]) -> [u64; 4] {
    [k[0] ^ P2, k[1] ^ P3, k[2] ^ P0, k[3] ^ P1]
}

/// One 64-byte block: `w(i)` is its word `i` (0..8), each read once, in
/// order.
#[inline(always)]
fn block(s: &mut [u64; 4], k: &[u64; 4], mut w: impl FnMut(usize) -> u64) {
    s[0] = mum(w(0) ^ s[0], w(1) ^ k[0]);
    s[1] = mum(w(2) ^ s[1], w(3) ^ k[1]);
    s[2] = mum(w(4) ^ s[2], w(5) ^ k[2]);
    s[3] = mum(w(6) ^ s[3], w(7) ^ k[3]);
}

/// The lanes folded together.
#[inline(always)]
fn fold(s: &[u64; 4], k: &[u64; 4]) -> u64 {
    mum(s[0] ^ P3, s[1] ^ k[2]) ^ mum(s[2] ^ P1, s[3] ^ k[3])
}

/// FNV-1a 64 (the benchmark's baseline; not seeded, not collision-safe).
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_answers() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn every_single_bit_flip_changes_the_hash() {
        let mut page = [0u8; 4096];
        for (i, b) in page.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let h = page_hash(42, &page);
        for bit in 0..4096 * 8 {
            page[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(page_hash(42, &page), h, "bit {bit}");
            page[bit / 8] ^= 1 << (bit % 8);
        }
    }

    #[test]
    fn avalanche_is_balanced() {
        // Flipping one input bit flips about half of the output bits.
        let page = [0x5au8; 4096];
        let h = page_hash(7, &page);
        let mut total = 0u32;
        let n = 512;
        for i in 0..n {
            let mut p = page;
            p[i * 8] ^= 1;
            total += (page_hash(7, &p) ^ h).count_ones();
        }
        let avg = total as f64 / n as f64;
        assert!((28.0..36.0).contains(&avg), "average flipped bits {avg}");
    }

    /// Pages whose every 8-byte word is one of the public constants (the
    /// values that zero a factor of a `mum(word ^ CONSTANT, ..)` step) still
    /// depend on the seed and on every other byte.
    #[test]
    fn public_constants_do_not_wipe_the_seed() {
        let ps = [P0, P1, P2, P3];
        for pattern in 0..ps.len() * ps.len() {
            let mut page = [0u8; 4096];
            for (i, w) in page.chunks_exact_mut(8).enumerate() {
                // Word i of each 16 bytes: two constants per pattern.
                let c = if i % 2 == 0 {
                    ps[pattern % 4]
                } else {
                    ps[pattern / 4]
                };
                w.copy_from_slice(&c.to_le_bytes());
            }
            let h = page_hash(42, &page);
            assert_ne!(h, page_hash(43, &page), "pattern {pattern}: seed wiped");
            for off in [8usize, 24, 1000, 2048, 4000] {
                let mut q = page;
                q[off] ^= 0x80;
                assert_ne!(page_hash(42, &q), h, "pattern {pattern}, byte {off}");
            }
        }
    }

    /// Hashing word by word (in place) gives the hash of the bytes, and
    /// reads each word once, in order.
    #[test]
    fn word_reader_agrees_with_the_byte_hash() {
        let mut rng = crate::testutil::Rng::new(5);
        for seed in [0u64, 1, 42, u64::MAX] {
            let mut page = [0u8; PAGE_BYTES];
            rng.fill(&mut page);
            let mut next = 0usize;
            let h = page_hash_words(seed, |i| {
                assert_eq!(i, next, "words in order, once each");
                next += 1;
                let mut w = [0u8; 8];
                w.copy_from_slice(&page[8 * i..8 * i + 8]);
                u64::from_le_bytes(w)
            });
            assert_eq!(next, PAGE_BYTES / 8);
            assert_eq!(h, page_hash(seed, &page), "seed {seed}");
        }
    }

    #[test]
    fn seed_and_length_matter() {
        let page = [0u8; 4096];
        assert_ne!(page_hash(1, &page), page_hash(2, &page));
        assert_ne!(page_hash(1, &page[..4095]), page_hash(1, &page));
        assert_ne!(page_hash(1, &[]), page_hash(1, &[0]));
    }
}
