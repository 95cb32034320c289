// SPDX-License-Identifier: GPL-2.0

//! GGTT partition slots of the sim parent device.
//!
//! The sim parent owns one global graphics address space (the GGTT) of
//! [`GGTT_SIZE`] bytes. The first [`SLOT_SIZE`] belong to the host (as on a
//! GVT-g host, where i915 keeps its own share); the rest is cut into
//! `SLOT_SIZE` slots, and each vGPU gets a run of contiguous, naturally
//! aligned slots as its partition. Two live vGPUs never share a base, so a
//! vGPU migrated to another instance lands at a different base and the
//! destination has to remap graphics addresses.
//!
//! The allocator is a plain bitmap: no allocation, `O(slots)` per call.

/// Size of the whole global graphics address space of the sim parent
/// (Gen9's GGTT is 4 GiB; graphics addresses stay 32-bit).
pub const GGTT_SIZE: u64 = 4 << 30;
/// Granule of partition allocation.
pub const SLOT_SIZE: u64 = 64 << 20;
/// Number of slots, slot 0 being the host's.
pub const NR_SLOTS: u32 = (GGTT_SIZE / SLOT_SIZE) as u32;

/// Bitmap of used slots; bit `i` set means slot `i` is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    used: u64,
}

impl Default for Slots {
    fn default() -> Self {
        Self::new()
    }
}

impl Slots {
    /// A parent with only the host's slot 0 in use.
    pub const fn new() -> Self {
        Self { used: 1 }
    }

    /// Number of slots a partition of `size` bytes needs, if it is a
    /// non-zero multiple of [`SLOT_SIZE`] that fits.
    fn span(size: u64) -> Option<u32> {
        if size == 0 || !size.is_multiple_of(SLOT_SIZE) || size > GGTT_SIZE - SLOT_SIZE {
            return None;
        }
        u32::try_from(size / SLOT_SIZE).ok()
    }

    fn mask(first: u32, n: u32) -> u64 {
        // n <= NR_SLOTS - 1 < 64 and first + n <= NR_SLOTS.
        ((1u64 << n) - 1) << first
    }

    fn candidates(size: u64) -> impl Iterator<Item = (u32, u32)> {
        let n = Self::span(size).unwrap_or(0);
        (1..NR_SLOTS)
            .filter(move |first| n != 0 && first % n == 0 && first + n <= NR_SLOTS)
            .map(move |first| (first, n))
    }

    /// Takes the lowest free, naturally aligned run for a partition of
    /// `size` bytes and returns its base, or `None` if none is free or the
    /// size is not a multiple of [`SLOT_SIZE`].
    pub fn alloc(&mut self, size: u64) -> Option<u64> {
        let (first, n) =
            Self::candidates(size).find(|&(f, n)| self.used & Self::mask(f, n) == 0)?;
        self.used |= Self::mask(first, n);
        Some(u64::from(first) * SLOT_SIZE)
    }

    /// Releases the partition at `base` of `size` bytes. Returns `false`
    /// (and changes nothing) if it was not allocated as such.
    pub fn free(&mut self, base: u64, size: u64) -> bool {
        let Some(n) = Self::span(size) else {
            return false;
        };
        if !base.is_multiple_of(SLOT_SIZE) || base == 0 {
            return false;
        }
        let Ok(first) = u32::try_from(base / SLOT_SIZE) else {
            return false;
        };
        if first.checked_add(n).is_none_or(|end| end > NR_SLOTS) {
            return false;
        }
        let m = Self::mask(first, n);
        if self.used & m != m {
            return false;
        }
        self.used &= !m;
        true
    }

    /// How many more partitions of `size` bytes fit, taking them greedily.
    pub fn available(&self, size: u64) -> u32 {
        let mut probe = *self;
        let mut count = 0;
        while probe.alloc(size).is_some() {
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_distinct_aligned_and_nonzero() {
        let mut s = Slots::new();
        let a = s.alloc(SLOT_SIZE).unwrap();
        let b = s.alloc(SLOT_SIZE).unwrap();
        assert_eq!(a, SLOT_SIZE);
        assert_eq!(b, 2 * SLOT_SIZE);
        let big = s.alloc(2 * SLOT_SIZE).unwrap();
        assert_eq!(big % (2 * SLOT_SIZE), 0);
        assert!(big >= 4 * SLOT_SIZE, "must skip the used slots 1 and 2");
    }

    #[test]
    fn capacity_and_free() {
        let mut s = Slots::new();
        assert_eq!(s.available(SLOT_SIZE), NR_SLOTS - 1);
        assert_eq!(s.available(2 * SLOT_SIZE), NR_SLOTS / 2 - 1);
        assert_eq!(s.available(16 * SLOT_SIZE), 3, "1 GiB partitions");
        let mut bases = std::vec::Vec::new();
        while let Some(b) = s.alloc(SLOT_SIZE) {
            bases.push(b);
        }
        assert_eq!(bases.len() as u32, NR_SLOTS - 1);
        assert_eq!(s.available(SLOT_SIZE), 0);
        assert!(s.free(bases[2], SLOT_SIZE));
        assert!(!s.free(bases[2], SLOT_SIZE), "double free must be refused");
        assert_eq!(s.alloc(SLOT_SIZE), Some(bases[2]));
    }

    #[test]
    fn rejects_bad_sizes_and_bases() {
        let mut s = Slots::new();
        assert_eq!(s.alloc(0), None);
        assert_eq!(s.alloc(SLOT_SIZE + 4096), None);
        assert_eq!(s.alloc(GGTT_SIZE), None);
        assert!(!s.free(0, SLOT_SIZE), "the host slot is never freed");
        assert!(!s.free(SLOT_SIZE, SLOT_SIZE), "not allocated");
        assert!(!s.free(u64::MAX - 5, SLOT_SIZE));
        assert!(!s.free(7 * SLOT_SIZE, 2 * SLOT_SIZE), "runs past the end");
        assert_eq!(s, Slots::new());
    }
}
