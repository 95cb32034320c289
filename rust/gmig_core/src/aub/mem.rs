// SPDX-License-Identifier: GPL-2.0

//! GPU memory rebuilt from an AUB file's memory writes, after Mesa's
//! `src/intel/tools/aub_mem.c`.
//!
//! Two byte-addressed stores of 4 KiB pages, both the caller's
//! ([`PageStore`]): physical memory, and the GGTT's entry array (entry `i`,
//! the page at graphics address `i << 12`, is the little-endian u64 at
//! byte `8 * i`). A Gen8 GGTT entry is present if bit 0 is set and names
//! the physical page in bits 38:12 ([`super::super::gtt::PTE_ADDR_MASK`];
//! Mesa keeps every bit above 11). A GGTT write goes to the physical pages
//! the GGTT entries name when the write is applied, as in Mesa's
//! `aub_mem_ggtt_write()`; an entry written later does not move data
//! already written.
//!
//! A PPGTT address is translated by a 4-level walk from the PML4's
//! physical address (Mesa's `ppgtt_walk()`): 48-bit virtual addresses,
//! nine index bits per level, each entry present if bit 0 is set, the next
//! table (or the page) in bits 47:12. Mesa's writer maps 4 KiB pages
//! only; a 1 GiB or 2 MiB page (PS, bit 7 of a PDP or PD entry) or a
//! 64 KiB page table (IPS, bit 11 of a PD entry) is reported as not
//! mapped, never walked as if it were a table.

use super::super::gtt::{PTE_ADDR_MASK, PTE_PRESENT};
use super::{AubError, AubSpace, Packet, CMD_MEM_TRACE_MEMORY_WRITE};

/// Page size of both stores.
pub const PAGE: usize = 4096;
/// Offset bits within a page.
const PAGE_MASK: u64 = PAGE as u64 - 1;
/// Address bits of a PPGTT entry and of the PML4 pointer: 47:12.
pub const PPGTT_ADDR_MASK: u64 = ((1 << 48) - 1) & !PAGE_MASK;
/// PS: a PDP entry maps a 1 GiB page, a PD entry a 2 MiB page (i915's
/// `GEN8_PDPE_PS_1G`, `GEN8_PDE_PS_2M`).
const PPGTT_PS: u64 = 1 << 7;
/// IPS: a PD entry's page table maps 64 KiB pages (`GEN8_PDE_IPS_64K`).
const PPGTT_IPS_64K: u64 = 1 << 11;

/// Page storage the caller provides (the kernel never uses this; the host
/// analyzer backs it with a map). Pages are 4 KiB; `pfn` is an address
/// shifted right by 12.
pub trait PageStore {
    /// The page, if it was ever written.
    fn page(&self, pfn: u64) -> Option<&[u8; PAGE]>;
    /// The page, allocated zeroed on first use; `None` when the store
    /// refuses (a memory cap).
    fn page_mut(&mut self, pfn: u64) -> Option<&mut [u8; PAGE]>;
}

/// Reads `buf.len()` bytes at byte address `addr` of `store`; `None` if a
/// page was never written.
fn read_bytes<S: PageStore>(store: &S, addr: u64, buf: &mut [u8]) -> Option<()> {
    let mut at = addr;
    let mut done = 0;
    while done < buf.len() {
        let off = (at & PAGE_MASK) as usize;
        let n = (PAGE - off).min(buf.len() - done);
        let page = store.page(at >> 12)?;
        buf[done..done + n].copy_from_slice(&page[off..off + n]);
        done += n;
        at = at.checked_add(n as u64)?;
    }
    Some(())
}

/// Writes `data` at byte address `addr` of `store`; the packet at
/// `offset` fails with [`AubError::StoreFull`] when the store refuses a
/// page (the pages before it are written).
fn write_bytes<S: PageStore>(
    store: &mut S,
    offset: usize,
    addr: u64,
    data: &[u8],
) -> Result<(), AubError> {
    let mut at = addr;
    let mut done = 0;
    while done < data.len() {
        let off = (at & PAGE_MASK) as usize;
        let n = (PAGE - off).min(data.len() - done);
        let pfn = at >> 12;
        let page = store
            .page_mut(pfn)
            .ok_or(AubError::StoreFull { offset, pfn })?;
        page[off..off + n].copy_from_slice(&data[done..done + n]);
        done += n;
        at = at.wrapping_add(n as u64);
    }
    Ok(())
}

/// The little-endian u64 at byte address `addr` (8-aligned) of `store`.
fn read_u64<S: PageStore>(store: &S, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    read_bytes(store, addr, &mut b)?;
    Some(u64::from_le_bytes(b))
}

/// GPU memory rebuilt from an AUB's writes: physical pages plus GGTT
/// entries (8 bytes per 4 KiB page, Gen8 PTE: present bit 0, address bits
/// 38:12), following Mesa's `aub_mem.c`.
#[derive(Debug)]
pub struct AubMem<P, G> {
    phys: P,
    ggtt: G,
}

impl<P: PageStore, G: PageStore> AubMem<P, G> {
    /// Memory over the (usually empty) stores `phys`, physical pages, and
    /// `ggtt_entries`, the GGTT entry array as pages.
    pub fn new(phys: P, ggtt_entries: G) -> Self {
        Self {
            phys,
            ggtt: ggtt_entries,
        }
    }

    /// The physical page store.
    pub fn phys(&self) -> &P {
        &self.phys
    }

    /// The GGTT entry store.
    pub fn ggtt_entries(&self) -> &G {
        &self.ggtt
    }

    /// The stores, physical pages first.
    pub fn into_parts(self) -> (P, G) {
        (self.phys, self.ggtt)
    }

    /// Applies packet `p`, found at byte `offset` of the file: memory
    /// writes to physical memory, the GGTT and the GGTT entries; other
    /// packets change nothing. A write to local memory is
    /// [`AubError::Unsupported`]. On an error, memory may hold the part of
    /// the write before the failing page.
    pub fn apply(&mut self, offset: usize, p: &Packet<'_>) -> Result<(), AubError> {
        let &Packet::MemWrite { space, addr, data } = p else {
            return Ok(());
        };
        match space {
            // Mesa's aub_mem_phys_write().
            AubSpace::Physical => write_bytes(&mut self.phys, offset, addr, data),
            // Mesa's aub_mem_ggtt_entry_write().
            AubSpace::GgttEntry => write_bytes(&mut self.ggtt, offset, addr, data),
            AubSpace::Ggtt => self.write_ggtt(offset, addr, data),
            AubSpace::Local => Err(AubError::Unsupported {
                offset,
                header: CMD_MEM_TRACE_MEMORY_WRITE,
                why: "write to local memory",
            }),
        }
    }

    /// Mesa's `aub_mem_ggtt_write()`: each page through its GGTT entry.
    /// An entry that is not present fails the write
    /// ([`AubError::GgttUnmapped`]) before anything of that page is
    /// written, so nothing lands in the physical page an empty entry's
    /// zero address would name.
    fn write_ggtt(&mut self, offset: usize, gma: u64, data: &[u8]) -> Result<(), AubError> {
        let mut at = gma;
        let mut done = 0;
        while done < data.len() {
            let n = (PAGE - (at & PAGE_MASK) as usize).min(data.len() - done);
            let pa = self.translate_ggtt(at).ok_or(AubError::GgttUnmapped {
                offset,
                gma: at & !PAGE_MASK,
            })?;
            write_bytes(&mut self.phys, offset, pa, &data[done..done + n])?;
            done += n;
            at = at.wrapping_add(n as u64);
        }
        Ok(())
    }

    /// The raw GGTT entry of the page at graphics address `gma`; `None` if
    /// it was never written.
    pub fn ggtt_entry(&self, gma: u64) -> Option<u64> {
        read_u64(&self.ggtt, (gma >> 12).checked_mul(8)?)
    }

    /// The physical address of graphics address `gma`; `None` if its GGTT
    /// entry is not present.
    pub fn translate_ggtt(&self, gma: u64) -> Option<u64> {
        let e = self.ggtt_entry(gma)?;
        if e & PTE_PRESENT == 0 {
            return None;
        }
        Some((e & PTE_ADDR_MASK) | (gma & PAGE_MASK))
    }

    /// The physical address of PPGTT address `va` (bits 47:0 used) under
    /// the PML4 at physical address `pml4` (bits 47:12 used): a 4-level
    /// walk (Mesa's `ppgtt_walk()`); `None` if a table was never written,
    /// an entry is not present, or it maps a page larger than 4 KiB.
    pub fn translate_ppgtt(&self, pml4: u64, va: u64) -> Option<u64> {
        let mut table = pml4 & PPGTT_ADDR_MASK;
        for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
            let index = (va >> shift) & 0x1ff;
            let e = read_u64(&self.phys, table + 8 * index)?;
            if e & PTE_PRESENT == 0 {
                return None;
            }
            let huge = match level {
                3 => e & PPGTT_PS,
                2 => e & (PPGTT_PS | PPGTT_IPS_64K),
                _ => 0,
            };
            if huge != 0 {
                return None;
            }
            table = e & PPGTT_ADDR_MASK;
        }
        Some(table | (va & PAGE_MASK))
    }

    /// Reads physical memory at `pa`; `None` if a page was never written.
    pub fn read_phys(&self, pa: u64, buf: &mut [u8]) -> Option<()> {
        read_bytes(&self.phys, pa, buf)
    }

    /// Reads `buf.len()` bytes at graphics address `gma`, page by page
    /// through the GGTT; `None` if a page is not mapped or its physical
    /// page was never written.
    pub fn read_ggtt(&self, gma: u64, buf: &mut [u8]) -> Option<()> {
        self.read_via(gma, buf, |a| self.translate_ggtt(a))
    }

    /// Reads `buf.len()` bytes at PPGTT address `va` under `pml4`, page by
    /// page; `None` if a page is not mapped or was never written.
    pub fn read_ppgtt(&self, pml4: u64, va: u64, buf: &mut [u8]) -> Option<()> {
        self.read_via(va, buf, |a| self.translate_ppgtt(pml4, a))
    }

    /// The physical page holding graphics address `gma`, if mapped and
    /// written.
    pub fn ggtt_page(&self, gma: u64) -> Option<&[u8; PAGE]> {
        self.phys.page(self.translate_ggtt(gma)? >> 12)
    }

    /// Reads at `addr`, translating each page's address with `translate`.
    fn read_via(
        &self,
        addr: u64,
        buf: &mut [u8],
        translate: impl Fn(u64) -> Option<u64>,
    ) -> Option<()> {
        let mut at = addr;
        let mut done = 0;
        while done < buf.len() {
            let n = (PAGE - (at & PAGE_MASK) as usize).min(buf.len() - done);
            self.read_phys(translate(at)?, &mut buf[done..done + n])?;
            done += n;
            at = at.checked_add(n as u64)?;
        }
        Some(())
    }
}
