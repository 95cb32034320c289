// SPDX-License-Identifier: GPL-2.0

//! Gen8/9 graphics translation table entries and GGTT partitions.
//!
//! A Gen8+ GGTT or PPGTT entry is 64 bits: bit 0 present, bit 1 writable
//! (PPGTT), bits 3/4/7 PWT/PCD/PAT cache control, bits 12..=38 the physical
//! page address. Gen8/9 client parts have 39-bit physical addresses
//! ([`PA_BITS`]; i915's `GEN8_PTE_ADDR_MASK`-style masks and GVT-g's
//! `ADDR_4K_MASK` use bits 12..=38 for Gen8/9 too). [`Pte::new`] rejects
//! addresses with bits at or above 39; [`Pte::decode`] keeps whatever else
//! the raw entry holds (bits 39..=63, 5, 6, 8..=11) in [`Pte::flags`], so
//! `decode(raw).encode() == raw` for every present entry.
//!
//! A GGTT [`Partition`] is the slice of the global graphics address space
//! one vGPU owns (`[base, base + size)`, page aligned). Migrating a vGPU to
//! a partition at another base moves every GGTT graphics address it uses by
//! `dst.base - src.base` ([`Partition::rebase`]); see [`super::remap`].

/// Page size of GTT mappings.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Physical address width of Gen8/9 GTT entries (bits 12..=38 hold the
/// page address).
pub const PA_BITS: u32 = 39;
/// Present bit.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Writable bit (PPGTT).
pub const PTE_RW: u64 = 1 << 1;
/// Page-level write-through.
pub const PTE_PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PTE_PCD: u64 = 1 << 4;
/// PAT index bit.
pub const PTE_PAT: u64 = 1 << 7;
/// Address bits of an entry: 12..=38.
pub const PTE_ADDR_MASK: u64 = ((1u64 << PA_BITS) - 1) & !(PAGE_SIZE - 1);

/// Page frame number of an address (`addr >> 12`).
pub const fn addr_to_pfn(addr: u64) -> u64 {
    addr >> PAGE_SHIFT
}

/// Address of page frame `pfn`, or `None` if it does not fit in 64 bits.
pub const fn pfn_to_addr(pfn: u64) -> Option<u64> {
    pfn.checked_mul(PAGE_SIZE)
}

/// Why a GTT value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GttError {
    /// An address or size is not a multiple of [`PAGE_SIZE`].
    Unaligned,
    /// A partition of size 0.
    Empty,
    /// `base + size` does not fit in 64 bits, or a page address is at or
    /// above 2^[`PA_BITS`].
    Overflow,
}

/// A decoded GTT entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pte {
    /// Physical (guest physical / IOVA) address of the page.
    pub addr: u64,
    /// Flag bits (present, writable, cache control).
    pub flags: u64,
}

impl Pte {
    /// A present entry for the page at `addr` (must be page aligned and
    /// below 2^39) with extra `flags`.
    pub fn new(addr: u64, flags: u64) -> Option<Self> {
        if addr & !PTE_ADDR_MASK != 0 {
            return None;
        }
        Some(Self {
            addr,
            flags: (flags & !PTE_ADDR_MASK) | PTE_PRESENT,
        })
    }

    /// Decodes a raw entry; `None` if it is not present.
    pub fn decode(raw: u64) -> Option<Self> {
        if raw & PTE_PRESENT == 0 {
            return None;
        }
        Some(Self {
            addr: raw & PTE_ADDR_MASK,
            flags: raw & !PTE_ADDR_MASK,
        })
    }

    /// A present entry for page frame `pfn` with extra `flags`.
    pub fn from_pfn(pfn: u64, flags: u64) -> Option<Self> {
        Self::new(pfn_to_addr(pfn)?, flags)
    }

    /// The raw 64-bit entry.
    pub fn encode(&self) -> u64 {
        (self.addr & PTE_ADDR_MASK) | self.flags
    }

    /// Guest frame number of the page.
    pub fn gfn(&self) -> u64 {
        self.addr / PAGE_SIZE
    }

    /// Whether the writable bit (PPGTT) is set.
    pub fn writable(&self) -> bool {
        self.flags & PTE_RW != 0
    }

    /// The cache-control bits (PWT, PCD, PAT).
    pub fn cache_bits(&self) -> u64 {
        self.flags & (PTE_PWT | PTE_PCD | PTE_PAT)
    }
}

/// A vGPU's slice of the global graphics address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// First graphics address of the partition.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Partition {
    /// A partition, if `base` and `size` are page aligned, `size` is not 0
    /// and the end does not overflow; the error says which rule failed.
    pub fn checked(base: u64, size: u64) -> Result<Self, GttError> {
        if !base.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(GttError::Unaligned);
        }
        if size == 0 {
            return Err(GttError::Empty);
        }
        base.checked_add(size).ok_or(GttError::Overflow)?;
        Ok(Self { base, size })
    }

    /// [`Partition::checked`] without the reason.
    pub fn new(base: u64, size: u64) -> Option<Self> {
        Self::checked(base, size).ok()
    }

    /// One past the last graphics address of the partition (saturating, so
    /// a hand-built partition that overflows cannot panic here).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Moves `addr` from this partition to the same offset in `to`:
    /// `addr - self.base + to.base`. `None` if `addr` is not inside this
    /// partition or the offset does not fit in `to`.
    pub fn rebase(&self, addr: u64, to: &Partition) -> Option<u64> {
        if !self.contains(addr) {
            return None;
        }
        let off = addr - self.base;
        if off >= to.size {
            return None;
        }
        to.base.checked_add(off)
    }

    /// Whether graphics address `addr` falls inside the partition.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.size
    }

    /// Whether `[addr, addr + len)` lies inside the partition.
    pub fn contains_range(&self, addr: u64, len: u64) -> bool {
        self.contains(addr) && len <= self.size - (addr - self.base)
    }

    /// Index of the partition's entry that maps `addr`.
    pub fn index(&self, addr: u64) -> Option<usize> {
        if !self.contains(addr) {
            return None;
        }
        usize::try_from((addr - self.base) / PAGE_SIZE).ok()
    }

    /// Number of entries (pages) of the partition.
    pub fn entries(&self) -> u64 {
        self.size / PAGE_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pte_round_trip_and_flags() {
        let p = Pte::new(0x1234_5000, PTE_PCD | PTE_PAT).unwrap();
        let raw = p.encode();
        assert_eq!(raw, 0x1234_5000 | PTE_PCD | PTE_PAT | PTE_PRESENT);
        assert_eq!(Pte::decode(raw), Some(p));
        assert_eq!(p.gfn(), 0x12345);
        assert_eq!(Pte::decode(raw & !PTE_PRESENT), None);
        assert_eq!(Pte::new(0x1001, 0), None, "unaligned");
        assert_eq!(Pte::new(1 << 39, 0), None, "beyond 39 bits");
        assert!(!p.writable());
        assert_eq!(p.cache_bits(), PTE_PCD | PTE_PAT);
        let w = Pte::from_pfn(0x7f_ffff, PTE_RW | PTE_PWT).unwrap();
        assert_eq!(w.addr, 0x7f_ffff << 12);
        assert_eq!(w.encode(), (0x7f_ffffu64 << 12) | PTE_RW | PTE_PWT | 1);
        assert!(w.writable());
        assert_eq!(Pte::from_pfn(1 << 27, 0), None, "pfn beyond 39-bit PA");
        assert_eq!(Pte::from_pfn(u64::MAX, 0), None);
    }

    #[test]
    fn decode_keeps_every_bit_of_present_entries() {
        for raw in [
            1u64,
            0xffff_ffff_ffff_ffff,
            0x8000_0000_0000_0fff,
            0x7f_ffff_f001,
        ] {
            let p = Pte::decode(raw).unwrap();
            assert_eq!(p.encode(), raw);
            assert_eq!(p.addr, raw & 0x7f_ffff_f000);
        }
    }

    #[test]
    fn pfn_helpers() {
        assert_eq!(addr_to_pfn(0x1234_5fff), 0x12345);
        assert_eq!(pfn_to_addr(0x12345), Some(0x1234_5000));
        assert_eq!(pfn_to_addr(u64::MAX >> 11), None);
    }

    #[test]
    fn partition_bounds() {
        let p = Partition::new(64 << 20, 64 << 20).unwrap();
        assert!(p.contains(64 << 20));
        assert!(!p.contains((64 << 20) - 1));
        assert!(!p.contains(128 << 20));
        assert!(p.contains_range((128 << 20) - 8, 8));
        assert!(!p.contains_range((128 << 20) - 8, 9));
        assert_eq!(p.index((64 << 20) + 8192), Some(2));
        assert_eq!(p.entries(), 16384);
        assert_eq!(Partition::new(1, 4096), None);
        assert_eq!(Partition::new(!4095, 8192), None);
        assert_eq!(Partition::checked(1, 4096), Err(GttError::Unaligned));
        assert_eq!(Partition::checked(4096, 4095), Err(GttError::Unaligned));
        assert_eq!(Partition::checked(4096, 0), Err(GttError::Empty));
        assert_eq!(Partition::checked(!4095, 8192), Err(GttError::Overflow));
        assert_eq!(p.end(), 128 << 20);
    }

    #[test]
    fn rebase_moves_by_the_base_difference() {
        let a = Partition::new(64 << 20, 64 << 20).unwrap();
        let b = Partition::new(192 << 20, 64 << 20).unwrap();
        assert_eq!(
            a.rebase((64 << 20) + 0x1234, &b),
            Some((192 << 20) + 0x1234)
        );
        assert_eq!(
            b.rebase((192 << 20) + 0x1234, &a),
            Some((64 << 20) + 0x1234)
        );
        assert_eq!(a.rebase(0x1000, &b), None, "outside the source");
        let small = Partition::new(0, 4096).unwrap();
        assert_eq!(a.rebase((64 << 20) + 4096, &small), None, "beyond dst");
        assert_eq!(a.rebase(64 << 20, &small), Some(0));
    }
}
