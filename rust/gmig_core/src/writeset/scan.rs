// SPDX-License-Identifier: GPL-2.0

//! What both providers need to bound a submission's writes through a
//! PPGTT: the walk of a context's page tables in guest memory, the
//! per-context pipeline state ([`CtxSlot`]), and the per-submission
//! record that refuses a bound built on state the same submission wrote
//! ([`Written`], [`StateVerdict`]).
//!
//! The sim's command streamer ([`super::super::sim::exec`]) runs these as
//! it executes a context; the GVT-g provider ([`super::super::gvt::narrow`])
//! runs them in kvmgt's command scanner hook, before the GPU runs the
//! commands.

use super::super::gtt::{Pte, PAGE_SIZE};
use super::super::mem::{GuestMem, MemFault};
use super::state::{PipeState, StateSink};
use super::surface::Range;
use super::WriteSink;

/// Context state slots a vGPU is normally given.
pub const CONTEXT_SLOTS: usize = 8;
/// Pages one write range of a draw or command may span to be recorded
/// page by page (256 MiB: a 4K render target with its auxiliary surface is
/// about 40 MiB); a larger one makes the write set unbounded.
pub const MAX_RANGE_PAGES: u64 = 1 << 16;
/// Pages of write ranges translated per submission at most, then the write
/// set is unbounded: each costs a share of a page-table read and a
/// [`WriteSink::may_write`].
pub const MAX_RECORD_PAGES: u64 = 1 << 20;
/// Reads of pipeline state (binding tables, surface states, kernels,
/// interface descriptors) per submission at most; past it, draws are
/// unbounded. A real iris batch needs a few per draw plus a kernel scan
/// per new kernel.
pub const MAX_STATE_READS: u32 = 1 << 17;
/// Merged write ranges of a submission kept to refuse bounds built on
/// state written earlier in it; past it, the write set is unbounded.
pub const SUBMISSION_RANGES: usize = 64;
/// Write ranges one draw or dispatch may report; past it, unbounded.
pub const COMMAND_RANGES: usize = 32;

/// How a PPGTT's entries are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The sim's model: every level maps 4 KiB pages through 4 levels,
    /// flags beyond the present bit are ignored, addresses below 2^39
    /// ([`Pte::decode`]).
    Sim,
    /// Gen8+ hardware, as a guest's i915 writes it: addresses in bits
    /// 45:12 (GVT-g's `ADDR_4K_MASK`). A 1 GiB or 2 MiB page (PS, bit 7,
    /// of a PDP or PD entry) and a page table of 64 KiB pages (IPS, bit
    /// 11, of a PD entry) are not walked ([`Walk::Unsupported`]).
    Gen8,
}

/// Why a PPGTT walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// An entry on the way is not present (or the address has bits above
    /// 47, or there is no PPGTT): nothing is mapped there.
    Unmapped,
    /// A page table could not be read.
    Mem(MemFault),
    /// An entry the walk does not follow ([`Format::Gen8`]).
    Unsupported,
}

impl From<MemFault> for Walk {
    fn from(m: MemFault) -> Self {
        Self::Mem(m)
    }
}

/// Gen8 PDP/PD entry bit: the entry maps a page (1 GiB, 2 MiB).
const GEN8_PS: u64 = 1 << 7;
/// Gen8 PD entry bit: its page table maps 64 KiB pages.
const GEN8_IPS: u64 = 1 << 11;
/// Gen8 entry address, bits 45:12.
const GEN8_ADDR: u64 = ((1 << 46) - 1) & !(PAGE_SIZE - 1);

/// A context's 4-level PPGTT in guest memory, with the last page table
/// walked to remembered. The caller drops that memory
/// ([`Ppgtt::invalidate`]) whenever a page table may have changed.
#[derive(Debug, Clone, Copy)]
pub struct Ppgtt {
    pml4: u64,
    format: Format,
    /// (graphics address >> 21, guest-physical address of its page table).
    pt: Option<(u64, u64)>,
}

impl Ppgtt {
    /// The PPGTT whose PML4 is at guest-physical `pml4` (0: none).
    pub const fn new(pml4: u64, format: Format) -> Self {
        Self {
            pml4,
            format,
            pt: None,
        }
    }

    /// Its PML4's guest-physical address (0: none).
    pub fn pml4(&self) -> u64 {
        self.pml4
    }

    /// Forgets the page table walked to last.
    pub fn invalidate(&mut self) {
        self.pt = None;
    }

    /// The address entry `idx` of the table at `table` points to; `leaf`:
    /// the entry maps a page.
    fn entry(
        &self,
        mem: &mut impl GuestMem,
        table: u64,
        idx: u64,
        leaf: bool,
    ) -> Result<u64, Walk> {
        // The table address comes from guest memory (64 bits): adding the
        // entry offset can overflow.
        let at = table
            .checked_add(idx * 8)
            .ok_or(Walk::Mem(MemFault { gpa: table }))?;
        let mut e = [0u8; 8];
        mem.read(at, &mut e)?;
        decode(self.format, u64::from_le_bytes(e), leaf)
    }

    /// The guest-physical address of the page table mapping `gaddr`.
    pub fn page_table(&mut self, mem: &mut impl GuestMem, gaddr: u64) -> Result<u64, Walk> {
        if self.pml4 == 0 || gaddr >> 48 != 0 {
            return Err(Walk::Unmapped);
        }
        if let Some((k, pt)) = self.pt {
            if k == gaddr >> 21 {
                return Ok(pt);
            }
        }
        let mut table = self.pml4;
        for shift in [39u32, 30, 21] {
            table = self.entry(mem, table, (gaddr >> shift) & 511, false)?;
        }
        self.pt = Some((gaddr >> 21, table));
        Ok(table)
    }

    /// The guest-physical address of graphics address `gaddr`.
    pub fn translate(&mut self, mem: &mut impl GuestMem, gaddr: u64) -> Result<u64, Walk> {
        let pt = self.page_table(mem, gaddr)?;
        let page = self.entry(mem, pt, (gaddr >> 12) & 511, true)?;
        Ok(page + gaddr % PAGE_SIZE)
    }

    /// Reads `buf.len()` bytes at graphics address `gaddr`, page by page.
    pub fn read(
        &mut self,
        mem: &mut impl GuestMem,
        gaddr: u64,
        buf: &mut [u8],
    ) -> Result<(), Walk> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = gaddr.checked_add(done as u64).ok_or(Walk::Unmapped)?;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            let gpa = self.translate(mem, a)?;
            let part = buf.get_mut(done..done + n).ok_or(Walk::Unmapped)?;
            mem.read(gpa, part)?;
            done += n;
        }
        Ok(())
    }

    /// Tells `sink` the guest frames behind graphics addresses `[start,
    /// end)`. Pages that do not translate ([`Walk::Unmapped`]) are left
    /// out: a write there faults (the sim) or lands in the host's scratch
    /// page (GVT-g's shadow of a non-present entry). Any other failure is
    /// returned with [`Format::Gen8`] (the caller cannot bound the range);
    /// with [`Format::Sim`] those pages are left out too (the streamer's
    /// own write through them faults). One page-table walk per 2 MiB and
    /// one read per 32 of its PTEs.
    pub fn record(
        &mut self,
        mem: &mut impl GuestMem,
        start: u64,
        end: u64,
        sink: &mut impl WriteSink,
    ) -> Result<(), Walk> {
        let mut page = start / PAGE_SIZE;
        let last = end.div_ceil(PAGE_SIZE);
        let fail = |w: Walk, format: Format| match (w, format) {
            (Walk::Unmapped, _) | (_, Format::Sim) => Ok(()),
            (w, Format::Gen8) => Err(w),
        };
        while page < last {
            // To the end of this page table, 32 entries at a time.
            let n = (512 - page % 512).min(last - page).min(32);
            let pt = match self.page_table(mem, page * PAGE_SIZE) {
                Ok(pt) => pt,
                Err(w) => {
                    fail(w, self.format)?;
                    page += n;
                    continue;
                }
            };
            let mut e = [0u8; 8 * 32];
            let buf = e.get_mut(..8 * n as usize).unwrap_or(&mut []);
            let read = match pt.checked_add((page % 512) * 8) {
                Some(at) => mem.read(at, buf).map_err(Walk::Mem),
                None => Err(Walk::Mem(MemFault { gpa: pt })),
            };
            if let Err(w) = read {
                fail(w, self.format)?;
                page += n;
                continue;
            }
            for k in 0..n as usize {
                let mut q = [0u8; 8];
                for (j, d) in q.iter_mut().enumerate() {
                    *d = buf.get(8 * k + j).copied().unwrap_or(0);
                }
                match decode(self.format, u64::from_le_bytes(q), true) {
                    Ok(addr) => sink.may_write(addr / PAGE_SIZE),
                    Err(w) => fail(w, self.format)?,
                }
            }
            page += n;
        }
        Ok(())
    }
}

/// Page tables [`Ppgtt::record_all`] reads at most (the PML4, PDPs, PDs
/// and PTs; 1024 page tables map 2 GiB of 4 KiB pages).
pub const MAX_WALK_TABLES: u32 = 1 << 10;

impl Ppgtt {
    /// Tells `sink` every guest frame the PPGTT maps (each present entry
    /// of its page tables): what a command that writes only through it
    /// may write. Returns the frames told. Fails ([`Walk::Unsupported`])
    /// past [`MAX_WALK_TABLES`] page tables (a guest's tables may point at
    /// themselves) or without a PPGTT; with [`Format::Gen8`] also on a huge
    /// or 64 KiB page and on a table that cannot be read. Upper-level
    /// tables are read 32 entries at a time; nothing is allocated.
    pub fn record_all(
        &mut self,
        mem: &mut impl GuestMem,
        sink: &mut impl WriteSink,
    ) -> Result<u64, Walk> {
        if self.pml4 == 0 {
            return Err(Walk::Unsupported);
        }
        let mut tables = 0u32;
        let mut frames = 0u64;
        self.walk_table(mem, self.pml4, 3, &mut tables, &mut frames, sink)?;
        Ok(frames)
    }

    /// Walks the table at `table`, `level` levels above the pages (0: a
    /// page table).
    fn walk_table(
        &mut self,
        mem: &mut impl GuestMem,
        table: u64,
        level: u32,
        tables: &mut u32,
        frames: &mut u64,
        sink: &mut impl WriteSink,
    ) -> Result<(), Walk> {
        *tables += 1;
        if *tables > MAX_WALK_TABLES {
            return Err(Walk::Unsupported);
        }
        let format = self.format;
        let fail = |w: Walk| match (w, format) {
            (Walk::Unmapped, _) | (Walk::Mem(_), Format::Sim) => Ok(()),
            (w, _) => Err(w),
        };
        for chunk in 0..512 / 32 {
            let mut e = [0u8; 8 * 32];
            let read = table
                .checked_add(chunk * 32 * 8)
                .ok_or(Walk::Mem(MemFault { gpa: table }))
                .and_then(|at| mem.read(at, &mut e).map_err(Walk::Mem));
            if let Err(w) = read {
                fail(w)?;
                continue;
            }
            for k in 0..32 {
                let mut q = [0u8; 8];
                for (j, d) in q.iter_mut().enumerate() {
                    *d = e.get(8 * k + j).copied().unwrap_or(0);
                }
                match decode(format, u64::from_le_bytes(q), level == 0) {
                    Ok(addr) if level == 0 => {
                        sink.may_write(addr / PAGE_SIZE);
                        *frames += 1;
                    }
                    Ok(addr) => self.walk_table(mem, addr, level - 1, tables, frames, sink)?,
                    Err(w) => fail(w)?,
                }
            }
        }
        Ok(())
    }
}

/// The address a raw entry points to; `leaf`: a page table's entry.
fn decode(format: Format, raw: u64, leaf: bool) -> Result<u64, Walk> {
    match format {
        Format::Sim => Pte::decode(raw).map(|p| p.addr).ok_or(Walk::Unmapped),
        Format::Gen8 => {
            if raw & 1 == 0 {
                Err(Walk::Unmapped)
            } else if !leaf && raw & (GEN8_PS | GEN8_IPS) != 0 {
                Err(Walk::Unsupported)
            } else {
                Ok(raw & GEN8_ADDR)
            }
        }
    }
}

/// Write ranges of one submission (graphics addresses in the context's
/// state space, merged), to refuse a bound built on state an earlier
/// command wrote. Two graphics addresses of one frame are not matched (as
/// in the host analyzer): a guest that aliases its state gets a wrong
/// bound on a real GPU's writes, never on the sim's, whose draws write
/// nothing.
#[derive(Debug, Clone)]
pub struct Written {
    r: [Range; SUBMISSION_RANGES],
    n: usize,
    /// A write through the other space (the GGTT from a PPGTT context):
    /// every later state read is refused.
    pub other: bool,
    /// More ranges than kept: every later state read is refused.
    pub full: bool,
}

impl Default for Written {
    fn default() -> Self {
        Self::new()
    }
}

impl Written {
    /// Nothing written yet.
    pub const fn new() -> Self {
        Self {
            r: [Range { start: 0, end: 0 }; SUBMISSION_RANGES],
            n: 0,
            other: false,
            full: false,
        }
    }

    fn ranges(&self) -> &[Range] {
        self.r.get(..self.n).unwrap_or(&[])
    }

    /// Whether a state read of `q` may see a write of this submission.
    pub fn overlaps(&self, q: Range) -> bool {
        self.other
            || self.full
            || self
                .ranges()
                .iter()
                .any(|r| r.start < q.end && q.start < r.end)
    }

    /// Whether `q` lies inside one recorded range.
    pub fn contains(&self, q: Range) -> bool {
        self.ranges()
            .iter()
            .any(|r| r.start <= q.start && q.end <= r.end)
    }

    /// Adds `q`, merged with the ranges it overlaps or touches (so the
    /// union stays exact); false if no room is left.
    pub fn add(&mut self, mut q: Range) -> bool {
        let mut i = 0;
        while i < self.n {
            let Some(&r) = self.r.get(i) else { break };
            if r.start <= q.end && q.start <= r.end {
                q = Range {
                    start: q.start.min(r.start),
                    end: q.end.max(r.end),
                };
                self.n -= 1;
                let last = self.r.get(self.n).copied().unwrap_or(q);
                if let Some(slot) = self.r.get_mut(i) {
                    *slot = last;
                }
            } else {
                i += 1;
            }
        }
        match self.r.get_mut(self.n) {
            Some(slot) => {
                *slot = q;
                self.n += 1;
                true
            }
            None => false,
        }
    }
}

/// One draw's or dispatch's verdict from the state tracker: its write
/// ranges, or unbounded (too many ranges, or a bound that relies on state
/// this submission may have written).
pub struct StateVerdict<'w> {
    written: &'w Written,
    ranges: [Range; COMMAND_RANGES],
    n: usize,
    /// The command's writes are not bounded.
    pub unbounded: bool,
}

impl<'w> StateVerdict<'w> {
    /// An empty verdict, checked against `written`.
    pub fn new(written: &'w Written) -> Self {
        Self {
            written,
            ranges: [Range { start: 0, end: 0 }; COMMAND_RANGES],
            n: 0,
            unbounded: false,
        }
    }

    /// The ranges the command may write.
    pub fn ranges(&self) -> &[Range] {
        self.ranges.get(..self.n).unwrap_or(&[])
    }

    /// The verdict without its borrow of the submission's record: the
    /// ranges (the first `n` of them count), `n`, and whether the command
    /// is unbounded.
    pub fn into_parts(self) -> ([Range; COMMAND_RANGES], usize, bool) {
        (self.ranges, self.n, self.unbounded)
    }
}

impl StateSink for StateVerdict<'_> {
    fn write(&mut self, r: Range) {
        match self.ranges.get_mut(self.n) {
            Some(slot) => {
                *slot = r;
                self.n += 1;
            }
            None => self.unbounded = true,
        }
    }

    fn unbounded(&mut self, _why: &'static str) {
        self.unbounded = true;
    }

    fn read_state(&mut self, r: Range) {
        // State an earlier command of this submission (or this one) may
        // have written: what was read is not what the GPU will read.
        let mine = self
            .ranges()
            .iter()
            .any(|w| w.start < r.end && r.start < w.end);
        if mine || self.written.overlaps(r) {
            self.unbounded = true;
        }
    }
}

/// The pipeline state of one context a vGPU ran, kept across its
/// submissions: storage the caller gives (e.g. [`CONTEXT_SLOTS`] copies
/// of [`CtxSlot::EMPTY`]; a few KiB each, so never on a kernel stack). A
/// slot holds the context of one context image address and PPGTT;
/// evicting one (least recently run first) only makes that context's next
/// draws unbounded until its state is seen again. The states are not
/// migrated: a destination starts with none.
#[derive(Debug, Clone)]
pub struct CtxSlot {
    /// (LRCA, PML4) of the context held; `None`: free.
    key: Option<(u64, u64)>,
    /// When it last ran (a count of submissions).
    used: u64,
    /// Its last run faulted: the state it left is not known, nor is its
    /// image's fresh flag to be trusted (the sim).
    pub faulted: bool,
    /// The context's pipeline state.
    pub state: PipeState,
}

impl CtxSlot {
    /// A free slot.
    pub const EMPTY: CtxSlot = CtxSlot {
        key: None,
        used: 0,
        faulted: false,
        state: PipeState::new(),
    };

    /// The (LRCA, PML4) of the context held.
    pub fn key(&self) -> Option<(u64, u64)> {
        self.key
    }

    /// Frees the slot.
    pub fn clear(&mut self) {
        self.key = None;
        self.used = 0;
        self.faulted = false;
        self.state.forget();
    }
}

/// No context state storage: every draw's write set is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoContexts;

impl core::ops::Deref for NoContexts {
    type Target = [CtxSlot];
    fn deref(&self) -> &[CtxSlot] {
        &[]
    }
}

impl core::ops::DerefMut for NoContexts {
    fn deref_mut(&mut self) -> &mut [CtxSlot] {
        &mut []
    }
}

/// Frees every slot (device reset, restore).
pub fn clear_contexts(slots: &mut [CtxSlot]) {
    for s in slots {
        s.clear();
    }
}

/// The slot of the context at `lrca` with PPGTT `pml4`: found, or taken
/// (a free one first, else the least recently run) and started as `new`
/// when it is not there. `None` without slots.
pub fn context_slot(
    slots: &mut [CtxSlot],
    lrca: u64,
    pml4: u64,
    new: impl FnOnce() -> PipeState,
) -> Option<usize> {
    let clock = slots.iter().map(|s| s.used).max()?.saturating_add(1);
    let key = Some((lrca, pml4));
    let i = match slots.iter().position(|s| s.key == key) {
        Some(i) => i,
        None => {
            let i = slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| (s.key.is_some(), s.used))
                .map(|(i, _)| i)?;
            let s = slots.get_mut(i)?;
            s.key = key;
            s.faulted = false;
            s.state = new();
            i
        }
    };
    slots.get_mut(i)?.used = clock;
    Some(i)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sim::exec::tests::VecMem as Mem;
    use std::vec;
    use std::vec::Vec;

    fn put(m: &mut impl GuestMem, at: u64, v: u64) {
        m.write(at, &v.to_le_bytes()).unwrap();
    }

    fn get64(m: &mut impl GuestMem, at: u64) -> u64 {
        let mut b = [0u8; 8];
        m.read(at, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    /// Maps graphics page `va` to guest frame `gpa` in the 4-level PPGTT at
    /// `pml4` (entries present and writable, valid in both formats),
    /// taking new tables from `next` on; returns the leaf entry's guest
    /// physical address.
    pub(crate) fn map(
        mem: &mut impl GuestMem,
        pml4: u64,
        next: &mut u64,
        va: u64,
        gpa: u64,
    ) -> u64 {
        let mut table = pml4;
        for shift in [39u32, 30, 21] {
            let e = table + ((va >> shift) & 511) * 8;
            let raw = get64(mem, e);
            table = if raw & 1 != 0 {
                raw & GEN8_ADDR
            } else {
                let t = *next;
                *next += PAGE_SIZE;
                put(mem, e, t | 3);
                t
            };
        }
        let e = table + ((va >> 12) & 511) * 8;
        put(mem, e, gpa | 3);
        e
    }

    /// Where [`draw_state`] puts the state tracker tests' draw state.
    pub(crate) const SS_GPA: u64 = 0x21_0000;
    pub(crate) const IB_GPA: u64 = 0x22_0000;
    pub(crate) const RT_GPA: u64 = 0x28_0000;
    pub(crate) const RT_PAGES: u64 = 64;

    /// Maps and writes the state tracker tests' draw state (kernel,
    /// binding table and surface state, a [`RT_PAGES`]-page render target)
    /// behind the PPGTT at `pml4`, tables from `next` on.
    pub(crate) fn draw_state(mem: &mut impl GuestMem, pml4: u64, next: &mut u64) {
        use super::super::state::tests as st;
        let shader = st::fragment_shader();
        let ib_pages = (st::KSP + shader.len() as u64).div_ceil(PAGE_SIZE);
        for i in 0..ib_pages {
            map(
                mem,
                pml4,
                next,
                st::IB + i * PAGE_SIZE,
                IB_GPA + i * PAGE_SIZE,
            );
        }
        map(mem, pml4, next, st::SS, SS_GPA);
        for i in 0..RT_PAGES {
            map(
                mem,
                pml4,
                next,
                st::RT + i * PAGE_SIZE,
                RT_GPA + i * PAGE_SIZE,
            );
        }
        mem.write(IB_GPA + st::KSP, &shader).unwrap();
        let dw = |d: &[u32]| d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        mem.write(SS_GPA + st::BT, &dw(&[st::SURF as u32])).unwrap();
        mem.write(SS_GPA + st::SURF, &dw(&st::render_target()))
            .unwrap();
    }

    /// PML4 at 0x1000, PDP 0x2000, PD 0x3000, PT 0x4000 mapping graphics
    /// page 0x40_0000_0000 + i to frame 0x100 + i for i < 8.
    fn rig() -> (Mem, u64) {
        let mut m = Mem::new(0x20_0000);
        let va: u64 = 0x40_0000_0000;
        put(&mut m, 0x1000 + ((va >> 39) & 511) * 8, 0x2000 | 3);
        put(&mut m, 0x2000 + ((va >> 30) & 511) * 8, 0x3000 | 3);
        put(&mut m, 0x3000 + ((va >> 21) & 511) * 8, 0x4000 | 3);
        for i in 0..8u64 {
            put(&mut m, 0x4000 + i * 8, ((0x100 + i) << 12) | 3);
        }
        (m, va)
    }

    #[test]
    fn record_names_the_present_frames() {
        let (mut m, va) = rig();
        for format in [Format::Sim, Format::Gen8] {
            let mut p = Ppgtt::new(0x1000, format);
            let mut got = Vec::new();
            p.record(&mut m, va + 0x800, va + 10 * PAGE_SIZE, &mut |f| {
                got.push(f)
            })
            .unwrap();
            assert_eq!(got, (0x100..0x108).collect::<Vec<_>>(), "{format:?}");
            assert_eq!(p.translate(&mut m, va + 0x1234), Ok(0x101_234));
        }
    }

    #[test]
    fn gen8_huge_pages_are_not_walked() {
        let (mut m, va) = rig();
        // A 2 MiB page in the PD: the sim's model follows it as a table,
        // a Gen8 walk refuses it.
        put(
            &mut m,
            0x3000 + ((va >> 21) & 511) * 8,
            0x4000 | GEN8_PS | 3,
        );
        let mut p = Ppgtt::new(0x1000, Format::Gen8);
        let r = p.record(&mut m, va, va + PAGE_SIZE, &mut |_| {});
        assert_eq!(r, Err(Walk::Unsupported));
        put(
            &mut m,
            0x3000 + ((va >> 21) & 511) * 8,
            0x4000 | GEN8_IPS | 3,
        );
        let mut p = Ppgtt::new(0x1000, Format::Gen8);
        assert_eq!(p.translate(&mut m, va), Err(Walk::Unsupported));
        let mut p = Ppgtt::new(0x1000, Format::Sim);
        assert_eq!(p.translate(&mut m, va), Ok(0x100_000));
    }

    #[test]
    fn unreadable_tables_fail_a_gen8_record() {
        let (mut m, va) = rig();
        put(&mut m, 0x3000 + ((va >> 21) & 511) * 8, 0x7000_0000 | 3);
        let mut p = Ppgtt::new(0x1000, Format::Gen8);
        let r = p.record(&mut m, va, va + PAGE_SIZE, &mut |_| {});
        assert!(matches!(r, Err(Walk::Mem(_))), "{r:?}");
        let mut p = Ppgtt::new(0x1000, Format::Sim);
        assert_eq!(p.record(&mut m, va, va + PAGE_SIZE, &mut |_| {}), Ok(()));
    }

    #[test]
    fn record_all_names_every_mapped_frame_within_its_budget() {
        let (mut m, _) = rig();
        for format in [Format::Sim, Format::Gen8] {
            let mut got = Vec::new();
            let n = Ppgtt::new(0x1000, format)
                .record_all(&mut m, &mut |f| got.push(f))
                .unwrap();
            assert_eq!(n, 8);
            assert_eq!(got, (0x100..0x108).collect::<Vec<_>>(), "{format:?}");
        }
        // Tables that map themselves at every level: 512^3 tables to walk.
        let mut m = Mem::new(0x2000);
        for i in 0..512 {
            put(&mut m, 0x1000 + i * 8, 0x1000 | 3);
        }
        let r = Ppgtt::new(0x1000, Format::Gen8).record_all(&mut m, &mut |_| {});
        assert_eq!(r, Err(Walk::Unsupported));
        let r = Ppgtt::new(0, Format::Sim).record_all(&mut m, &mut |_| {});
        assert_eq!(r, Err(Walk::Unsupported));
    }

    #[test]
    fn slots_are_found_taken_and_evicted() {
        let mut slots = vec![CtxSlot::EMPTY; 2];
        let a = context_slot(&mut slots, 1, 10, PipeState::fresh).unwrap();
        let b = context_slot(&mut slots, 2, 10, PipeState::new).unwrap();
        assert_ne!(a, b);
        assert_eq!(context_slot(&mut slots, 1, 10, PipeState::new), Some(a));
        // The least recently used (2) goes.
        let c = context_slot(&mut slots, 3, 10, PipeState::new).unwrap();
        assert_eq!(c, b);
        assert_eq!(slots[c].key(), Some((3, 10)));
        assert!(context_slot(&mut [], 1, 1, PipeState::new).is_none());
    }
}
