// SPDX-License-Identifier: GPL-2.0

//! A GVT-g vGPU's graphics memory layout and the rebase of its addresses.

use super::super::gtt::{Partition, PAGE_SIZE};

/// Most fence registers a vGPU may have (Gen8/9 have 32 in all).
pub const MAX_FENCES: u32 = 32;

/// A GVT-g vGPU's graphics memory and fences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GvtLayout {
    /// Low graphics memory (CPU-mappable aperture).
    pub aperture: Partition,
    /// High graphics memory (hidden).
    pub hidden: Partition,
    /// Number of fence registers.
    pub fences: u32,
}

impl GvtLayout {
    /// A layout, if both slices are valid partitions that do not overlap
    /// and there are at most [`MAX_FENCES`] fence registers.
    pub fn new(aperture: (u64, u64), hidden: (u64, u64), fences: u32) -> Option<Self> {
        let aperture = Partition::new(aperture.0, aperture.1)?;
        let hidden = Partition::new(hidden.0, hidden.1)?;
        if aperture.base < hidden.end() && hidden.base < aperture.end() {
            return None;
        }
        if fences > MAX_FENCES {
            return None;
        }
        Some(Self {
            aperture,
            hidden,
            fences,
        })
    }

    /// GGTT entries the vGPU owns (aperture and hidden pages).
    pub fn entries(&self) -> u64 {
        self.aperture.entries() + self.hidden.entries()
    }

    /// Whether a vGPU of layout `other` can take this one's state: same
    /// slice sizes and fence count (bases may differ).
    pub fn compatible(&self, other: &GvtLayout) -> bool {
        self.aperture.size == other.aperture.size
            && self.hidden.size == other.hidden.size
            && self.fences == other.fences
    }

    /// Position in the image's entry list of global GGTT entry `index`,
    /// or `None` if the vGPU does not own it.
    pub fn image_index(&self, index: u64) -> Option<u64> {
        let ap = self.aperture.base / PAGE_SIZE;
        let hi = self.hidden.base / PAGE_SIZE;
        if index >= ap && index - ap < self.aperture.entries() {
            Some(index - ap)
        } else if index >= hi && index - hi < self.hidden.entries() {
            Some(self.aperture.entries() + (index - hi))
        } else {
            None
        }
    }

    /// Global GGTT entry of position `i` of the image's entry list.
    pub fn ggtt_index(&self, i: u64) -> Option<u64> {
        let ap = self.aperture.entries();
        if i < ap {
            Some(self.aperture.base / PAGE_SIZE + i)
        } else if i - ap < self.hidden.entries() {
            Some(self.hidden.base / PAGE_SIZE + (i - ap))
        } else {
            None
        }
    }

    /// Whether `[gma, gma + len)` lies inside one of the vGPU's slices.
    pub fn contains_range(&self, gma: u64, len: u64) -> bool {
        self.aperture.contains_range(gma, len) || self.hidden.contains_range(gma, len)
    }

    /// Moves the range `[gma, gma + len)` from this layout to the same
    /// offset in `to`'s slice of the same kind. `None` if the range is not
    /// wholly inside one slice of this layout or does not fit in `to`.
    pub fn rebase(&self, gma: u64, len: u64, to: &GvtLayout) -> Option<u64> {
        let (from, dst) = if self.aperture.contains_range(gma, len) {
            (&self.aperture, &to.aperture)
        } else if self.hidden.contains_range(gma, len) {
            (&self.hidden, &to.hidden)
        } else {
            return None;
        };
        let new = from.rebase(gma, dst)?;
        dst.contains_range(new, len).then_some(new)
    }
}
