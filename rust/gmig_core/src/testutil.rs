// SPDX-License-Identifier: GPL-2.0

//! Helpers for property tests, benches and fuzz seeds: a tiny
//! deterministic PRNG (SplitMix64, not cryptographic) and an AUB writer
//! ([`aub`]). `core` only.

pub mod aub;

/// SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.next_u64() % n
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(r) {
                *d = s;
            }
        }
    }
}

/// Guest memory backed by a vector, for host tests of the streamer and
/// the providers (a fault past its end).
#[cfg(all(test, not(CONFIG_RUST)))]
pub(crate) struct VecMem(pub std::vec::Vec<u8>);

#[cfg(all(test, not(CONFIG_RUST)))]
impl super::mem::GuestMem for VecMem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), super::mem::MemFault> {
        let s = gpa as usize;
        let src = self
            .0
            .get(s..s + buf.len())
            .ok_or(super::mem::MemFault { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), super::mem::MemFault> {
        let s = gpa as usize;
        let dst = self
            .0
            .get_mut(s..s + buf.len())
            .ok_or(super::mem::MemFault { gpa })?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}

/// A write sink for host tests: the frames it was told of, and whether it
/// was told the write set is unbounded.
#[cfg(all(test, not(CONFIG_RUST)))]
#[derive(Default)]
pub(crate) struct Sink(pub std::vec::Vec<u64>, pub bool);

#[cfg(all(test, not(CONFIG_RUST)))]
impl super::writeset::WriteSink for Sink {
    fn may_write(&mut self, gfn: u64) {
        self.0.push(gfn)
    }
    fn unbounded(&mut self) {
        self.1 = true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        for n in 1..50 {
            assert!(a.below(n) < n);
        }
        assert_eq!(a.below(0), 0);
        let mut buf = [0u8; 13];
        a.fill(&mut buf);
        assert!(buf.iter().any(|&x| x != 0));
    }
}
