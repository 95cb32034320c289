// SPDX-License-Identifier: GPL-2.0

//! Gen8/9 graphics translation table entries and GGTT partitions.
//!
//! A Gen8+ GGTT or PPGTT entry is 64 bits: bit 0 present, bit 1 writable
//! (PPGTT), bits 3/4/7 PWT/PCD/PAT cache control, bits 12..=38 the physical
//! page address (39-bit physical addresses on Gen8/9 client parts; bits
//! above are ignored by the hardware and rejected here).

/// Page size of GTT mappings.
pub const PAGE_SIZE: u64 = 4096;
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
pub const PTE_ADDR_MASK: u64 = ((1u64 << 39) - 1) & !(PAGE_SIZE - 1);

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

    /// The raw 64-bit entry.
    pub fn encode(&self) -> u64 {
        (self.addr & PTE_ADDR_MASK) | self.flags
    }

    /// Guest frame number of the page.
    pub fn gfn(&self) -> u64 {
        self.addr / PAGE_SIZE
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
    /// and the end does not overflow.
    pub fn new(base: u64, size: u64) -> Option<Self> {
        if base % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 || size == 0 {
            return None;
        }
        base.checked_add(size)?;
        Some(Self { base, size })
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
        assert_eq!(Partition::new(u64::MAX & !4095, 8192), None);
    }
}
