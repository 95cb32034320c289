// SPDX-License-Identifier: GPL-2.0

//! The sim vGPU's command streamer.
//!
//! A context descriptor's bits 31:12 (LRCA) give the GGTT address of the
//! context image, a simplified Gen9 logical ring context ("gmig-sim LRC"),
//! little-endian dwords:
//!
//! | dword | field |
//! | --- | --- |
//! | 0 | magic [`LRC_MAGIC`] |
//! | 1 | ring start (GGTT address, page aligned) |
//! | 2 | ring size in bytes (4 KiB .. 2 MiB, page multiple) |
//! | 3 | ring head (byte offset; written back on completion) |
//! | 4 | ring tail (byte offset) |
//! | 5, 6 | PPGTT PML4 guest-physical address (low, high; 0 = none) |
//! | 7 | flags: bit 0 [`LRC_FRESH`], "never run since created" (cleared on write-back) |
//!
//! The streamer runs the ring from head to tail (wrapping) and its batches
//! (MI_BATCH_BUFFER_START, GGTT or PPGTT, chained or second level, up to
//! [`MAX_DEPTH`] levels). It takes every command's length from gmig's
//! parser ([`crate::cmd`]: MI, 2D and GFXPIPE 3D, media and GPGPU
//! commands, GVT-g's `cmd_parser.c` table, checked against Mesa's genxml
//! over real iris streams) and executes a subset (encodings as in i915's
//! `intel_gpu_commands.h`): MI_USER_INTERRUPT, MI_BATCH_BUFFER_START and
//! _END, MI_STORE_DATA_IMM, MI_FLUSH_DW and PIPE_CONTROL with a post-sync
//! immediate write, XY_COLOR_BLT and XY_SRC_COPY_BLT (32 bpp, GGTT
//! addresses). Every other command the parser knows runs without effect in
//! the model: MI_LOAD_REGISTER_IMM (to any register), _MEM and _REG,
//! MI_MATH, MI_PREDICATE, MI_SET_PREDICATE, MI_ARB_*, MI_SEMAPHORE_WAIT,
//! MI_CONDITIONAL_BATCH_BUFFER_END (never ends the batch: the rest runs, a
//! superset of the writes), MI_STORE_REGISTER_MEM, MI_ATOMIC,
//! MI_COPY_MEM_MEM, MI_REPORT_PERF_COUNT, other blits, 3D and media state,
//! draws and dispatches. Every graphics address goes through the vGPU's
//! GGTT partition or the context's 4-level PPGTT; every access to guest
//! memory goes through [`GuestMem`]. A command the parser does not know
//! or whose length it refuses, an address outside the partition, a
//! non-present entry, a guest memory fault, a bad ring, or an exhausted
//! budget stops the context with a [`Fault`].
//!
//! Write sets: before each command runs, the [`WriteSink`] learns the
//! guest frames it may write. The context's pipeline state
//! ([`PipeState`], one per context in the vGPU's [`CtxSlot`]s) sees each
//! command first and bounds what draws (3DPRIMITIVE), compute dispatches
//! (GPGPU_WALKER) and depth/HiZ operations write, from the state they run
//! with (GPU virtual ranges, each page translated through the PPGTT;
//! unmapped pages are left out: a write there faults and dirties
//! nothing). Commands the sim executes record the frames they write; the
//! others record [`command_write`]'s verdict on their fields. A bound
//! built on state an earlier command of the same submission may have
//! written is refused, as the host analyzer does (`gmig_trace`
//! `analyze.rs`). A context whose state is not kept (no slot, evicted, or
//! restored after migration) starts as [`PipeState::new`], nothing known;
//! one whose image has [`LRC_FRESH`] starts as [`PipeState::fresh`], the
//! state i915 gives a new context. A draw, dispatch or media command the
//! state does not bound (or a refused bound), and an MI command whose
//! addresses the parser does not decode and that has no GGTT bit
//! ([`unbounded_space`]), write through the context's PPGTT only: every
//! frame the PPGTT maps is recorded instead, once per submission
//! ([`Ppgtt::record_all`]); only a context without a PPGTT, or a PPGTT
//! past [`super::super::writeset::scan::MAX_WALK_TABLES`] page tables,
//! makes it unbounded.

use super::super::cmd::{self, Client, Command, Kind, Mode, Space as CmdSpace};
use super::super::gtt::{Partition, PAGE_SIZE};
use super::super::mem::{GuestMem, MemFault};
use super::super::writeset::command::{
    command_write, unbounded_space, writes_through_state, CmdWrite,
};
pub use super::super::writeset::scan::{clear_contexts, CtxSlot, NoContexts, CONTEXT_SLOTS};
use super::super::writeset::scan::{
    context_slot, Format, Ppgtt, StateVerdict, Walk, Written, MAX_RANGE_PAGES, MAX_RECORD_PAGES,
    MAX_STATE_READS,
};
use super::super::writeset::state::{GpuRead, PipeState};
use super::super::writeset::surface::Range;
use super::super::writeset::WriteSink;
use super::regs::ContextDescriptor;
use super::vgpu::{translate_ggtt, SimVgpu};

/// Magic of a gmig-sim context image, "GMLC".
pub const LRC_MAGIC: u32 = 0x434c_4d47;
/// Context image flag (dword 7, bit 0): the context has never run since
/// it was created; its pipeline state is i915's golden state
/// ([`PipeState::fresh`]). The streamer clears it when it writes the image
/// back.
pub const LRC_FRESH: u32 = 1;
/// Bytes of the context image the streamer reads.
const LRC_BYTES: usize = 32;
/// Byte offset of the flags dword in the context image.
const LRC_FLAGS: u64 = 28;
/// Commands executed per submission at most.
pub const MAX_COMMANDS: u32 = 1 << 16;
/// Bytes written by blits per submission at most.
pub const MAX_BLIT_BYTES: u64 = 64 << 20;
/// Dwords of a command fetched at most (the parser's whole window: every
/// address field lies in it); longer commands (media and state commands
/// with payloads) are given to the parser and the state tracker cut there.
const CMD_DWORDS: usize = cmd::MAX_ADDR_CMD_DWORDS;

/// Limits of one submission; [`Budget::default`] is [`MAX_COMMANDS`] and
/// [`MAX_BLIT_BYTES`]. (The fuzz target runs with smaller ones: the same
/// code, and far less time spent on inputs that loop until the budget
/// ends.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Commands executed at most.
    pub commands: u32,
    /// Bytes written by blits at most.
    pub blit_bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            commands: MAX_COMMANDS,
            blit_bytes: MAX_BLIT_BYTES,
        }
    }
}

/// Nesting of batch buffers (ring -> first level -> second level).
pub const MAX_DEPTH: usize = 3;

/// Why a context faulted (the value is the FAULT_STATUS register code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultKind {
    /// Unknown or unsupported command.
    UnknownOpcode = 1,
    /// GGTT address outside the vGPU's partition.
    OutsidePartition = 2,
    /// GGTT or PPGTT entry not present.
    Unmapped = 3,
    /// Guest memory not reachable (DMA unmapped).
    GuestMemory = 4,
    /// Bad context image or ring (size, head, tail).
    BadRing = 5,
    /// Command or blit budget exhausted (e.g. a batch that jumps to itself).
    Budget = 6,
    /// Malformed command (bad length or field).
    BadCommand = 7,
    /// MI_LOAD_REGISTER_IMM to a register the guest may not load (no
    /// longer raised: the streamer accepts every register; the code stays
    /// reserved).
    ForbiddenRegister = 8,
    /// Submission queue full.
    QueueFull = 9,
}

/// A workload fault: what, where (graphics or guest address) and at which
/// byte offset of the ring or batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The kind.
    pub kind: FaultKind,
    /// Address involved.
    pub addr: u64,
    /// Byte offset of the faulting command in its buffer.
    pub offset: u32,
}

impl Fault {
    /// A fault of `kind` at `addr`.
    pub fn new(kind: FaultKind, addr: u64) -> Self {
        Self {
            kind,
            addr,
            offset: 0,
        }
    }
}

impl From<MemFault> for Fault {
    fn from(m: MemFault) -> Self {
        Fault::new(FaultKind::GuestMemory, m.gpa)
    }
}

/// The fault of a PPGTT walk for graphics address `gaddr`.
fn walk_fault(w: Walk, gaddr: u64) -> Fault {
    match w {
        Walk::Mem(m) => m.into(),
        Walk::Unmapped | Walk::Unsupported => Fault::new(FaultKind::Unmapped, gaddr),
    }
}

/// What one context did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Commands executed.
    pub commands: u32,
    /// Bytes written to guest memory.
    pub bytes_written: u64,
    /// MI_USER_INTERRUPT commands seen.
    pub user_interrupts: u32,
}

/// Address space of a graphics address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The vGPU's GGTT partition.
    Ggtt,
    /// The context's PPGTT.
    Ppgtt,
}

impl From<CmdSpace> for Space {
    fn from(s: CmdSpace) -> Self {
        match s {
            CmdSpace::Ggtt => Space::Ggtt,
            CmdSpace::Ppgtt => Space::Ppgtt,
        }
    }
}

/// The sim's slot of a context: found or taken ([`context_slot`]); its
/// state restarts as [`PipeState::fresh`] if the image says `fresh` (a
/// context made anew at an address is fresh again), unless its last run
/// faulted.
fn sim_context_slot(slots: &mut [CtxSlot], lrca: u64, pml4: u64, fresh: bool) -> Option<usize> {
    let i = context_slot(slots, lrca, pml4, PipeState::new)?;
    let s = slots.get_mut(i)?;
    if fresh && !s.faulted {
        s.state = PipeState::fresh();
    }
    Some(i)
}

struct Ctx<'a, M> {
    partition: Partition,
    ggtt: &'a [u64],
    mem: &'a mut M,
    /// The context's PPGTT (PML4 0: none). The page table walked to last
    /// is forgotten whenever the streamer writes guest memory (it may have
    /// written a page table).
    ppgtt: Ppgtt,
    stats: ExecStats,
    blit_bytes: u64,
    budget: Budget,
    /// State reads left ([`MAX_STATE_READS`]).
    state_reads: u32,
}

impl<M: GuestMem> Ctx<'_, M> {
    /// The space of 3D and media state addresses: the PPGTT if the context
    /// has one.
    fn gfx_space(&self) -> Space {
        if self.ppgtt.pml4() != 0 {
            Space::Ppgtt
        } else {
            Space::Ggtt
        }
    }

    /// How the parser assigns spaces to addresses without a GGTT bit.
    fn mode(&self) -> Mode {
        Mode {
            blt: CmdSpace::Ggtt,
            gfx: match self.gfx_space() {
                Space::Ggtt => CmdSpace::Ggtt,
                Space::Ppgtt => CmdSpace::Ppgtt,
            },
        }
    }

    fn translate(&mut self, space: Space, gaddr: u64) -> Result<u64, Fault> {
        match space {
            Space::Ggtt => translate_ggtt(self.partition, self.ggtt, gaddr),
            Space::Ppgtt => self
                .ppgtt
                .translate(&mut *self.mem, gaddr)
                .map_err(|w| walk_fault(w, gaddr)),
        }
    }

    fn read(&mut self, space: Space, gaddr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = gaddr
                .checked_add(done as u64)
                .ok_or(Fault::new(FaultKind::BadCommand, gaddr))?;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            let gpa = self.translate(space, a)?;
            self.mem.read(gpa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Writes `buf` at `gaddr`. The caller has told the write sink about
    /// the destination first ([`Ctx::record`]); for GGTT addresses only
    /// (the blits), whose entries are the vGPU's and cannot change while
    /// it executes. PPGTT writes use [`Ctx::write_recorded`].
    fn write(&mut self, space: Space, gaddr: u64, buf: &[u8]) -> Result<(), Fault> {
        self.ppgtt.invalidate();
        let mut done = 0usize;
        while done < buf.len() {
            let a = gaddr
                .checked_add(done as u64)
                .ok_or(Fault::new(FaultKind::BadCommand, gaddr))?;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            let gpa = self.translate(space, a)?;
            self.mem.write(gpa, &buf[done..done + n])?;
            self.stats.bytes_written += n as u64;
            done += n;
        }
        Ok(())
    }

    /// Writes `buf` at `gaddr` and tells `sink` each destination frame
    /// just before writing to it, from the same translation: the PPGTT
    /// lives in guest memory, so a vCPU can change a PTE between two
    /// walks, and a separate walk for the write set could record a frame
    /// other than the one written. Stops at the first page that does not
    /// translate (nothing at or beyond it is recorded or written).
    fn write_recorded(
        &mut self,
        space: Space,
        gaddr: u64,
        buf: &[u8],
        sink: &mut impl WriteSink,
    ) -> Result<(), Fault> {
        self.ppgtt.invalidate();
        let mut done = 0usize;
        while done < buf.len() {
            let a = gaddr
                .checked_add(done as u64)
                .ok_or(Fault::new(FaultKind::BadCommand, gaddr))?;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            let gpa = self.translate(space, a)?;
            sink.may_write(gpa / PAGE_SIZE);
            self.mem.write(gpa, &buf[done..done + n])?;
            self.stats.bytes_written += n as u64;
            done += n;
        }
        Ok(())
    }

    /// Tells `sink` the guest frames behind graphics addresses `[start,
    /// end)` in `space`: the write set of a command, derived from its
    /// fields or its state before it runs. Pages that do not translate
    /// are left out (a write there faults, it writes no guest memory). A
    /// PPGTT range costs one page-table walk per 2 MiB and one read per
    /// 32 of its PTEs.
    fn record(&mut self, space: Space, start: u64, end: u64, sink: &mut impl WriteSink) {
        let mut page = start / PAGE_SIZE;
        let last = end.div_ceil(PAGE_SIZE);
        while page < last {
            let a = page * PAGE_SIZE;
            if space == Space::Ggtt {
                if let Ok(gpa) = self.translate(space, a) {
                    sink.may_write(gpa / PAGE_SIZE);
                }
                page += 1;
                continue;
            }
            // The sim's format leaves out what does not translate.
            let _ = self.ppgtt.record(&mut *self.mem, a, end, sink);
            return;
        }
    }

    fn read32(&mut self, space: Space, gaddr: u64) -> Result<u32, Fault> {
        let mut b = [0u8; 4];
        self.read(space, gaddr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// Where commands are fetched from.
#[derive(Clone, Copy)]
struct Cursor {
    space: Space,
    /// Ring: start address and size; batch: start address, size 0.
    start: u64,
    size: u64,
    /// Byte offset of the next dword.
    pos: u64,
    /// Ring only: stop here.
    tail: u64,
}

impl Cursor {
    fn at_end(&self) -> bool {
        self.size != 0 && self.pos == self.tail
    }

    fn addr(&self, dwords: u64) -> u64 {
        let off = self.pos + 4 * dwords;
        if self.size != 0 {
            self.start + off % self.size
        } else {
            self.start.wrapping_add(off)
        }
    }

    fn advance(&mut self, dwords: u64) {
        self.pos += 4 * dwords;
        if self.size != 0 {
            self.pos %= self.size;
        }
    }

    /// Dwords from `dwords` on that are contiguous in graphics memory: to
    /// the end of the page and, in a ring, of the ring.
    fn contiguous(&self, dwords: u64) -> u64 {
        let a = self.addr(dwords);
        let mut n = (PAGE_SIZE - a % PAGE_SIZE) / 4;
        if self.size != 0 {
            n = n.min((self.size - (self.pos + 4 * dwords) % self.size) / 4);
        }
        n.max(1)
    }
}

/// `len` bytes from `addr`.
fn span(addr: u64, len: u64) -> Range {
    Range {
        start: addr,
        end: addr.saturating_add(len),
    }
}

fn addr48(lo: u32, hi: u32) -> u64 {
    (u64::from(lo) | (u64::from(hi & 0xffff) << 32)) & !3
}

/// What one submission's write-set recording keeps: the context's state
/// (if the vGPU keeps one), the ranges written so far, whether the sink
/// was told the set is unbounded (nothing more needs recording then, but
/// what the sim writes itself) and the pages still to record.
struct Track<'s> {
    state: Option<&'s mut PipeState>,
    written: Written,
    unbounded: bool,
    pages_left: u64,
    /// Every frame the context's PPGTT maps was recorded
    /// ([`Track::through_ppgtt`]).
    all_mapped: bool,
}

impl Track<'_> {
    /// A draw, dispatch or media command whose writes are not bounded: it
    /// writes through the context's PPGTT only, so every frame the PPGTT
    /// maps is recorded, once per submission ([`Ppgtt::record_all`]); a
    /// context without one, or a walk that fails, is unbounded. Later
    /// state reads of the submission are refused (the command may have
    /// written anywhere).
    fn through_ppgtt<M: GuestMem>(&mut self, c: &mut Ctx<'_, M>, sink: &mut impl WriteSink) {
        self.written.full = true;
        if self.unbounded || self.all_mapped {
            return;
        }
        if c.gfx_space() != Space::Ppgtt {
            return self.unbounded(sink);
        }
        match c.ppgtt.record_all(&mut *c.mem, sink) {
            Ok(_) => self.all_mapped = true,
            Err(_) => self.unbounded(sink),
        }
    }

    fn unbounded(&mut self, sink: &mut impl WriteSink) {
        if !self.unbounded {
            self.unbounded = true;
            sink.unbounded();
        }
    }

    /// Notes a write of `[r.start, r.end)` in `space`; false if the
    /// range could not be kept.
    fn note<M: GuestMem>(&mut self, c: &Ctx<'_, M>, space: Space, r: Range) -> bool {
        if space != c.gfx_space() {
            self.written.other = true;
        } else if !self.written.add(r) {
            self.written.full = true;
            return false;
        }
        true
    }

    /// Records what a command not executed here may write: `r` in
    /// `space`, page by page within the limits above. A range inside the
    /// ranges this submission recorded already is not translated again
    /// (the union of the kept ranges is exact).
    fn write<M: GuestMem>(
        &mut self,
        c: &mut Ctx<'_, M>,
        space: Space,
        r: Range,
        sink: &mut impl WriteSink,
    ) {
        if r.end <= r.start {
            return;
        }
        let seen = space == c.gfx_space() && self.written.contains(r);
        if !self.note(c, space, r) {
            // Later bounds could not be checked against this write.
            return self.unbounded(sink);
        }
        if self.unbounded || seen {
            return;
        }
        let pages = r.end.div_ceil(PAGE_SIZE) - r.start / PAGE_SIZE;
        if pages > MAX_RANGE_PAGES || pages > self.pages_left {
            return self.unbounded(sink);
        }
        self.pages_left -= pages;
        c.record(space, r.start, r.end, sink);
    }
}

/// The context's memory as the state tracker reads it (its state space),
/// within [`MAX_STATE_READS`].
struct StateReader<'c, 'a, M> {
    c: &'c mut Ctx<'a, M>,
}

impl<M: GuestMem> GpuRead for StateReader<'_, '_, M> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        if self.c.state_reads == 0 {
            return false;
        }
        self.c.state_reads -= 1;
        let space = self.c.gfx_space();
        self.c.read(space, addr, buf).is_ok()
    }
}

/// Runs the context `desc` of `vgpu` to completion or fault.
pub(super) fn run<
    S: core::ops::DerefMut<Target = [u64]>,
    C: core::ops::DerefMut<Target = [CtxSlot]>,
    M: GuestMem,
>(
    vgpu: &mut SimVgpu<S, C>,
    desc: u64,
    mem: &mut M,
    sink: &mut impl WriteSink,
    budget: Budget,
) -> Result<ExecStats, Fault> {
    let lrca = ContextDescriptor(desc).lrca();
    let mut image = [0u8; LRC_BYTES];
    let (partition, ggtt, slots) = vgpu.exec_parts();
    let (stats, head_tail) = {
        let mut c = Ctx {
            partition,
            ggtt,
            mem,
            ppgtt: Ppgtt::new(0, Format::Sim),
            stats: ExecStats::default(),
            blit_bytes: 0,
            budget,
            state_reads: MAX_STATE_READS,
        };
        c.read(Space::Ggtt, lrca, &mut image)?;
        let dw = |i: usize| {
            u32::from_le_bytes([
                image[4 * i],
                image[4 * i + 1],
                image[4 * i + 2],
                image[4 * i + 3],
            ])
        };
        if dw(0) != LRC_MAGIC {
            return Err(Fault::new(FaultKind::BadRing, lrca));
        }
        let (start, size, head, tail, flags) = (dw(1), dw(2), dw(3), dw(4), dw(7));
        let pml4 = u64::from(dw(5)) | (u64::from(dw(6)) << 32);
        c.ppgtt = Ppgtt::new(pml4, Format::Sim);
        let size64 = u64::from(size);
        if size64 == 0
            || size64 % PAGE_SIZE != 0
            || size64 > (2 << 20)
            || u64::from(start) % PAGE_SIZE != 0
            || head >= size
            || tail >= size
            || head % 4 != 0
            || tail % 4 != 0
        {
            return Err(Fault::new(FaultKind::BadRing, u64::from(start)));
        }
        let ring = Cursor {
            space: Space::Ggtt,
            start: u64::from(start),
            size: size64,
            pos: u64::from(head),
            tail: u64::from(tail),
        };
        let fresh = flags & LRC_FRESH != 0;
        let slot = sim_context_slot(slots, lrca, pml4, fresh);
        let mut t = Track {
            state: slot.and_then(|i| slots.get_mut(i)).map(|s| &mut s.state),
            written: Written::new(),
            unbounded: false,
            pages_left: MAX_RECORD_PAGES,
            all_mapped: false,
        };
        let res = run_cursor(&mut c, &mut t, ring, sink).and_then(|()| {
            // Write back head = tail (the engine saves the context image).
            c.write_recorded(Space::Ggtt, lrca + 12, &tail.to_le_bytes(), sink)
        });
        // The context has run (if only in part): it is fresh no more.
        let flags_back = if fresh {
            c.write_recorded(
                Space::Ggtt,
                lrca + LRC_FLAGS,
                &(flags & !LRC_FRESH).to_le_bytes(),
                sink,
            )
        } else {
            Ok(())
        };
        if let Some(s) = slot.and_then(|i| slots.get_mut(i)) {
            s.faulted = res.is_err() || flags_back.is_err();
            if s.faulted {
                s.state.forget();
            }
        }
        res.and(flags_back)?;
        (c.stats, (start, tail, size))
    };
    let (start, tail, size) = head_tail;
    vgpu.set_ring_view(start, tail, tail, size.saturating_sub(PAGE_SIZE as u32) | 1);
    Ok(stats)
}

/// Fetches the dwords `from..buf.len()` of the command at `cur` into
/// `buf`, page by page.
fn fetch<M: GuestMem>(
    c: &mut Ctx<'_, M>,
    cur: &Cursor,
    buf: &mut [u32],
    from: usize,
) -> Result<(), Fault> {
    let mut i = from;
    let mut b = [0u8; 128];
    while i < buf.len() {
        let n = (cur.contiguous(i as u64) as usize)
            .min(buf.len() - i)
            .min(b.len() / 4);
        let bytes = &mut b[..4 * n];
        c.read(cur.space, cur.addr(i as u64), bytes)?;
        // Index loops: objtool flags zip() over chunks in kernel builds.
        for k in 0..n {
            if let (Some(d), Some(s)) = (buf.get_mut(i + k), bytes.get(4 * k..4 * k + 4)) {
                *d = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        i += n;
    }
    Ok(())
}

fn run_cursor<M: GuestMem>(
    c: &mut Ctx<'_, M>,
    t: &mut Track<'_>,
    ring: Cursor,
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
    let mut stack = [ring; MAX_DEPTH];
    let mut depth = 0usize;
    let mut buf = [0u32; CMD_DWORDS];
    loop {
        let cur = stack[depth];
        if depth == 0 && cur.at_end() {
            return Ok(());
        }
        c.stats.commands += 1;
        if c.stats.commands > c.budget.commands {
            return Err(Fault::new(FaultKind::Budget, cur.addr(0)));
        }
        let at = |f: Fault| Fault {
            offset: cur.pos as u32,
            ..f
        };
        let dw0 = c.read32(cur.space, cur.addr(0)).map_err(at)?;
        let unknown = at(Fault::new(FaultKind::UnknownOpcode, u64::from(dw0)));
        let len = cmd::command_len(dw0).ok_or(unknown)?;
        if depth == 0 {
            // The whole command must lie between head and tail.
            let avail = (cur.tail + cur.size - cur.pos) % cur.size;
            if len as u64 * 4 > avail {
                return Err(at(Fault::new(FaultKind::BadRing, cur.addr(0))));
            }
        }
        let n = len.min(CMD_DWORDS);
        let words = &mut buf[..n];
        words[0] = dw0;
        fetch(c, &cur, words, 1).map_err(at)?;
        let words = &buf[..n];
        let parsed = Command::decode(words, 0, c.mode()).map_err(|e| match e {
            cmd::CmdError::UnknownOpcode { .. } => unknown,
            _ => at(Fault::new(FaultKind::BadCommand, cur.addr(0))),
        })?;
        match parsed.kind {
            Kind::MiBatchBufferEnd => {
                if depth == 0 {
                    return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                }
                depth -= 1;
                continue;
            }
            Kind::MiBatchBufferStart {
                space,
                second_level,
            } => {
                let addr = addr48(words[1], words[2]);
                let batch = Cursor {
                    space: space.into(),
                    start: addr,
                    size: 0,
                    pos: 0,
                    tail: 0,
                };
                if depth == 0 || second_level {
                    // Call: return to the next command afterwards.
                    stack[depth].advance(len as u64);
                    depth += 1;
                    if depth >= MAX_DEPTH {
                        return Err(at(Fault::new(FaultKind::Budget, addr)));
                    }
                }
                // Chained (first level to first level): replace.
                stack[depth] = batch;
                continue;
            }
            _ => {}
        }
        command(c, t, words, &parsed, sink).map_err(at)?;
        stack[depth].advance(len as u64);
    }
}

/// Records what one command (not a batch start or end) may write and
/// executes it: `words` is its start (all of it, or [`CMD_DWORDS`]).
fn command<M: GuestMem>(
    c: &mut Ctx<'_, M>,
    t: &mut Track<'_>,
    words: &[u32],
    parsed: &Command,
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
    let dw = |i: usize| words.get(i).copied().unwrap_or(0);
    let dw0 = parsed.header;
    // Draws and dispatches need no verdict once the set is unbounded or
    // holds every frame the PPGTT maps.
    let skip = (t.unbounded || t.all_mapped) && writes_through_state(dw0);
    if let (Some(state), false) = (t.state.as_deref_mut(), skip) {
        let mut v = StateVerdict::new(&t.written);
        if state.command(words, &mut StateReader { c }, &mut v) {
            let (ranges, n, unbounded) = v.into_parts();
            if unbounded {
                t.through_ppgtt(c, sink);
            }
            let space = c.gfx_space();
            for r in ranges.iter().take(n) {
                t.write(c, space, *r, sink);
            }
            return Ok(());
        }
    }
    match parsed.kind {
        Kind::Other {
            client: Client::Mi,
            opcode: 0x02,
        } => c.stats.user_interrupts += 1,
        Kind::Other {
            client: Client::Mi,
            opcode: 0x22,
        } => {
            // MI_LOAD_REGISTER_IMM: (offset, value) pairs. No register
            // load has an effect on memory in the model.
            if parsed.len.is_multiple_of(2) {
                return Err(Fault::new(FaultKind::BadCommand, u64::from(dw0)));
            }
        }
        Kind::MiStoreDataImm => {
            // dw1-2 address, then 1 or 2 data dwords.
            let space = if dw0 & (1 << 22) != 0 {
                Space::Ggtt
            } else {
                Space::Ppgtt
            };
            let addr = addr48(dw(1), dw(2));
            store_imm(c, t, space, addr, words, sink)?;
        }
        Kind::MiFlushDw if (dw0 >> 14) & 3 == 1 => {
            // Post-sync op in bits 15:14, dw1 bit 2 = GGTT.
            let lo = dw(1);
            let space = if lo & 4 != 0 {
                Space::Ggtt
            } else {
                Space::Ppgtt
            };
            let addr = addr48(lo & !7, dw(2));
            store_imm(c, t, space, addr, words, sink)?;
        }
        Kind::PipeControl if (dw(1) >> 14) & 3 == 1 => {
            // dw1 bits 15:14 post-sync op, bit 24 GGTT.
            let space = if dw(1) & (1 << 24) != 0 {
                Space::Ggtt
            } else {
                Space::Ppgtt
            };
            let addr = addr48(dw(2) & !7, dw(3));
            let mut data = [0u8; 8];
            data[..4].copy_from_slice(&dw(4).to_le_bytes());
            data[4..].copy_from_slice(&dw(5).to_le_bytes());
            t.note(c, space, span(addr, 8));
            c.write_recorded(space, addr, &data, sink)?;
        }
        Kind::XyColorBlt => {
            blit(c, t, words, None, dw(6), sink)?;
        }
        Kind::XySrcCopyBlt => {
            let src = (dw(6), dw(7) & 0xffff, addr48(dw(8), dw(9)));
            blit(c, t, words, Some(src), 0, sink)?;
        }
        _ => match command_write(words, c.mode()) {
            CmdWrite::Nothing | CmdWrite::StatusPage => {}
            CmdWrite::Unbounded if unbounded_space(words, c.mode()) == Some(CmdSpace::Ppgtt) => {
                t.through_ppgtt(c, sink)
            }
            CmdWrite::Unbounded => t.unbounded(sink),
            CmdWrite::Range { space, addr, len } => {
                t.write(c, space.into(), span(addr, len), sink);
            }
        },
    }
    Ok(())
}

/// The immediate-data write of MI_STORE_DATA_IMM and MI_FLUSH_DW: the
/// command's `len - 3` data dwords (one or two, from dword 3 on) go to
/// `addr`.
fn store_imm<M: GuestMem>(
    c: &mut Ctx<'_, M>,
    t: &mut Track<'_>,
    space: Space,
    addr: u64,
    words: &[u32],
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
    let mut data = [0u8; 8];
    let n = words.len().saturating_sub(3).min(2);
    for (i, d) in words.iter().skip(3).take(n).enumerate() {
        data[4 * i..4 * i + 4].copy_from_slice(&d.to_le_bytes());
    }
    t.note(c, space, span(addr, 4 * n as u64));
    c.write_recorded(space, addr, &data[..4 * n], sink)
}

/// A 32 bpp blit (`words`: XY_COLOR_BLT or XY_SRC_COPY_BLT): fill (`src`
/// None) or copy from (source y1x1, pitch, address), rows of `x2 - x1`
/// pixels.
fn blit<M: GuestMem>(
    c: &mut Ctx<'_, M>,
    t: &mut Track<'_>,
    words: &[u32],
    src: Option<(u32, u32, u64)>,
    color: u32,
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
    let dw = |i: usize| words.get(i).copied().unwrap_or(0);
    let (br13, y1x1, y2x2) = (dw(1), dw(2), dw(3));
    let dst = addr48(dw(4), dw(5));
    if (br13 >> 24) & 3 != 3 {
        return Err(Fault::new(FaultKind::BadCommand, u64::from(br13)));
    }
    let pitch = u64::from(br13 & 0xffff);
    let (x1, y1) = (u64::from(y1x1 & 0xffff), u64::from(y1x1 >> 16));
    let (x2, y2) = (u64::from(y2x2 & 0xffff), u64::from(y2x2 >> 16));
    if x2 <= x1 || y2 <= y1 {
        return Ok(());
    }
    let row = (x2 - x1) * 4;
    if row > pitch {
        return Err(Fault::new(FaultKind::BadCommand, u64::from(br13)));
    }
    c.blit_bytes += row * (y2 - y1);
    if c.blit_bytes > c.budget.blit_bytes {
        return Err(Fault::new(FaultKind::Budget, dst));
    }
    t.note(
        c,
        Space::Ggtt,
        span(dst + y1 * pitch + x1 * 4, (y2 - y1 - 1) * pitch + row),
    );
    for y in y1..y2 {
        let a = dst + y * pitch + x1 * 4;
        c.record(Space::Ggtt, a, a + row, sink);
    }
    let mut buf = [0u8; 256];
    for y in y1..y2 {
        let mut done = 0u64;
        while done < row {
            let n = (row - done).min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n];
            match src {
                None => {
                    for px in chunk.chunks_exact_mut(4) {
                        px.copy_from_slice(&color.to_le_bytes());
                    }
                }
                Some((sy1x1, spitch, saddr)) => {
                    let sx = u64::from(sy1x1 & 0xffff);
                    let sy = u64::from(sy1x1 >> 16) + (y - y1);
                    let a = saddr + sy * u64::from(spitch) + sx * 4 + done;
                    c.read(Space::Ggtt, a, chunk)?;
                }
            }
            let a = dst + y * pitch + x1 * 4 + done;
            c.write(Space::Ggtt, a, chunk)?;
            done += n as u64;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::vgpu::{SimVgpu, TYPES};
    use super::*;
    use crate::gtt::{Partition, Pte};
    use std::vec;
    use std::vec::Vec;

    /// Guest memory of `len` bytes at guest physical 0.
    pub(crate) struct VecMem {
        pub(crate) bytes: Vec<u8>,
        pub(crate) writes: Vec<(u64, usize)>,
    }

    impl VecMem {
        pub(crate) fn new(len: usize) -> Self {
            Self {
                bytes: vec![0; len],
                writes: Vec::new(),
            }
        }
    }

    impl GuestMem for VecMem {
        fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
            let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
            let e = s.checked_add(buf.len()).ok_or(MemFault { gpa })?;
            let src = self.bytes.get(s..e).ok_or(MemFault { gpa })?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
            let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
            let e = s.checked_add(buf.len()).ok_or(MemFault { gpa })?;
            let dst = self.bytes.get_mut(s..e).ok_or(MemFault { gpa })?;
            dst.copy_from_slice(buf);
            self.writes.push((gpa, buf.len()));
            Ok(())
        }
    }

    const PBASE: u64 = 64 << 20;
    const MEM: usize = 4 << 20;

    /// A vGPU whose first 1024 partition pages map guest pages 0..1024
    /// (graphics address PBASE + x -> guest physical x); context at guest
    /// 0, ring at 4 KiB (2 pages), batch at 64 KiB.
    pub(crate) fn rig() -> (SimVgpu<Vec<u64>>, VecMem) {
        let ty = &TYPES[0];
        let p = Partition::new(PBASE, ty.ggtt_size).unwrap();
        let mut v = SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap();
        for i in 0..(MEM as u64 / PAGE_SIZE) {
            v.write_ggtt_entry(
                PBASE + i * PAGE_SIZE,
                Pte::new(i * PAGE_SIZE, 0).unwrap().encode(),
            );
        }
        (v, VecMem::new(MEM))
    }

    fn put(mem: &mut VecMem, gpa: u64, dws: &[u32]) {
        for (i, d) in dws.iter().enumerate() {
            mem.write(gpa + 4 * i as u64, &d.to_le_bytes()).unwrap();
        }
    }

    fn get32(mem: &VecMem, gpa: u64) -> u32 {
        let s = gpa as usize;
        u32::from_le_bytes(mem.bytes[s..s + 4].try_into().unwrap())
    }

    /// Puts `ring` commands at the ring start and runs the context.
    fn run_ring(
        v: &mut SimVgpu<Vec<u64>>,
        mem: &mut VecMem,
        ring: &[u32],
    ) -> Result<ExecStats, Fault> {
        run_ring_into(v, mem, ring, &mut |_| {})
    }

    /// [`run_ring`] with the write sets going to `sink`; `mem.writes` then
    /// holds the streamer's writes only.
    fn run_ring_into(
        v: &mut SimVgpu<Vec<u64>>,
        mem: &mut VecMem,
        ring: &[u32],
        sink: &mut impl WriteSink,
    ) -> Result<ExecStats, Fault> {
        put(mem, 4096, ring);
        let tail = (ring.len() * 4) as u32;
        put(
            mem,
            0,
            &[LRC_MAGIC, (PBASE + 4096) as u32, 8192, 0, tail, 0, 0],
        );
        v.submit(PBASE | (5 << 32));
        let d = v.take_submission().unwrap();
        mem.writes.clear();
        v.execute(d, mem, sink)
    }

    const G: u32 = PBASE as u32;

    #[test]
    fn store_data_imm_ggtt() {
        let (mut v, mut mem) = rig();
        let s = run_ring(
            &mut v,
            &mut mem,
            &[(0x20 << 23) | (1 << 22) | 2, G + 0x20000, 0, 0xcafe_f00d],
        )
        .unwrap();
        assert_eq!(get32(&mem, 0x20000), 0xcafe_f00d);
        assert_eq!(s.bytes_written, 4 + 4, "the store and the head write-back");
        // Head written back to the context image.
        assert_eq!(get32(&mem, 12), 16);
    }

    #[test]
    fn batch_buffer_and_blits() {
        let (mut v, mut mem) = rig();
        let batch = 0x10000u32;
        // Batch: fill 8x2 px at (2,1) in a surface at 0x30000 (pitch 64), copy it.
        put(
            &mut mem,
            u64::from(batch),
            &[
                (2 << 29) | (0x50 << 22) | 5,
                (3 << 24) | 64,
                (1 << 16) | 2,
                (3 << 16) | 10,
                G + 0x30000,
                0,
                0x1122_3344,
                (2 << 29) | (0x53 << 22) | 8,
                (3 << 24) | 64,
                0,
                (2 << 16) | 8,
                G + 0x40000,
                0,
                (1 << 16) | 2,
                64,
                G + 0x30000,
                0,
                0x0a << 23,
            ],
        );
        let s = run_ring(&mut v, &mut mem, &[(0x31 << 23) | 1, G + batch, 0, 0]).unwrap();
        for y in 0..4u64 {
            for x in 0..16u64 {
                let filled = (1..3).contains(&y) && (2..10).contains(&x);
                let want = if filled { 0x1122_3344 } else { 0 };
                assert_eq!(
                    get32(&mem, 0x30000 + y * 64 + x * 4),
                    want,
                    "fill x{x} y{y}"
                );
                let copied = y < 2 && x < 8;
                assert_eq!(
                    get32(&mem, 0x40000 + y * 64 + x * 4),
                    if copied { 0x1122_3344 } else { 0 }
                );
            }
        }
        assert_eq!(s.bytes_written, 2 * 32 + 2 * 32 + 4);
    }

    #[test]
    fn pipe_control_and_flush_dw_post_sync() {
        let (mut v, mut mem) = rig();
        run_ring(
            &mut v,
            &mut mem,
            &[
                0x7a00_0004,
                (1 << 14) | (1 << 24),
                G + 0x50000,
                0,
                0xaaaa_0001,
                0xbbbb_0002,
                (0x26 << 23) | (1 << 14) | 2,
                (G + 0x50010) | 4,
                0,
                0x0000_1234,
                0,
                0,
            ],
        )
        .unwrap();
        assert_eq!(get32(&mem, 0x50000), 0xaaaa_0001);
        assert_eq!(get32(&mem, 0x50004), 0xbbbb_0002);
        assert_eq!(get32(&mem, 0x50010), 0x1234);
    }

    /// Found by the cmd_exec_remap fuzz target (overflow checks on, as in
    /// the kernel): a PML4 address near 2^64 in the context image made the
    /// page walk's `table + idx * 8` overflow, a panic (a BUG in the
    /// kernel) instead of a fault.
    #[test]
    fn ppgtt_walk_from_a_pml4_near_the_top_faults() {
        let (mut v, mut mem) = rig();
        for pml4 in [!0xfff, u64::MAX - 7, !0xff] {
            // A PPGTT store to 0xffff_ffff_fff8: index 511 at every level.
            put(&mut mem, 4096, &[(0x20 << 23) | 2, 0xffff_fff8, 0xffff, 77]);
            let (lo, hi) = (pml4 as u32, (pml4 >> 32) as u32);
            put(
                &mut mem,
                0,
                &[LRC_MAGIC, (PBASE + 4096) as u32, 8192, 0, 16, lo, hi],
            );
            v.submit(PBASE);
            let d = v.take_submission().unwrap();
            let f = v.execute(d, &mut mem, &mut |_| {}).unwrap_err();
            assert_eq!(f.kind, FaultKind::GuestMemory, "pml4 {pml4:#x}");
        }
    }

    /// 4-level PPGTT tables at 0x100000.. mapping gaddr 0x7f_0000_1000 to
    /// frame 0x60, a ring holding an MI_STORE_DATA_IMM of 77 at gaddr + 8
    /// through them and the context image at 0; returns the address of
    /// the leaf PTE.
    fn ppgtt_store_rig(mem: &mut VecMem) -> u64 {
        let ga: u64 = 0x7f_0000_1000;
        let lv = [0x100000u64, 0x101000, 0x102000, 0x103000];
        let idx = [
            (ga >> 39) & 511,
            (ga >> 30) & 511,
            (ga >> 21) & 511,
            (ga >> 12) & 511,
        ];
        for l in 0..4 {
            let next = if l < 3 { lv[l + 1] } else { 0x60000 };
            mem.write(lv[l] + idx[l] * 8, &(next | 3).to_le_bytes())
                .unwrap();
        }
        put(
            mem,
            4096,
            &[(0x20 << 23) | 2, ga as u32 + 8, (ga >> 32) as u32, 77],
        );
        put(
            mem,
            0,
            &[LRC_MAGIC, (PBASE + 4096) as u32, 8192, 0, 16, 0x100000, 0],
        );
        lv[3] + idx[3] * 8
    }

    #[test]
    fn ppgtt_store() {
        let (mut v, mut mem) = rig();
        ppgtt_store_rig(&mut mem);
        v.submit(PBASE);
        let d = v.take_submission().unwrap();
        let mut pages = Vec::new();
        v.execute(d, &mut mem, &mut |p| pages.push(p)).unwrap();
        assert_eq!(get32(&mem, 0x60008), 77);
        // The store's page, then the context image the engine writes back.
        assert_eq!(pages, vec![0x60, 0]);
    }

    #[test]
    fn ppgtt_write_lands_on_the_recorded_frame() {
        /// Guest memory whose leaf PTE at `pte` maps 0x60000 on the first
        /// read and 0x70000 on every later one: a vCPU rewriting the PPGTT
        /// while the command runs.
        struct Racy {
            mem: VecMem,
            pte: u64,
            reads: u32,
        }
        impl GuestMem for Racy {
            fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
                self.mem.read(gpa, buf)?;
                if gpa == self.pte {
                    self.reads += 1;
                    if self.reads > 1 {
                        buf.copy_from_slice(&(0x70000u64 | 3).to_le_bytes());
                    }
                }
                Ok(())
            }
            fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
                self.mem.write(gpa, buf)
            }
        }
        let (mut v, mut mem) = rig();
        let pte = ppgtt_store_rig(&mut mem);
        mem.writes.clear();
        let mut racy = Racy { mem, pte, reads: 0 };
        v.submit(PBASE);
        let d = v.take_submission().unwrap();
        let mut pages = Vec::new();
        v.execute(d, &mut racy, &mut |p| pages.push(p)).unwrap();
        assert!(racy.reads >= 1, "the store walked the PPGTT");
        for &(gpa, len) in &racy.mem.writes {
            for g in gpa / PAGE_SIZE..=(gpa + len as u64 - 1) / PAGE_SIZE {
                assert!(
                    pages.contains(&g),
                    "write to frame {g:#x} not in the write set {pages:x?}"
                );
            }
        }
    }

    #[test]
    fn write_sets_cover_every_write_and_draws_are_unbounded() {
        use crate::testutil::Sink;
        let (mut v, mut mem) = rig();
        let ring = [
            // XY_COLOR_BLT 3 rows of a pitch-4096 surface at 0x30000.
            (2 << 29) | (0x50 << 22) | 5,
            (3 << 24) | 4096,
            8,
            (3 << 16) | 16,
            G + 0x30000,
            0,
            1,
            // 3DPRIMITIVE.
            0x7b00_0005,
            0,
            3,
            0,
            1,
            0,
            0,
            0,
        ];
        let mut sink = Sink(Vec::new(), false);
        run_ring_into(&mut v, &mut mem, &ring, &mut sink).unwrap();
        assert!(sink.1, "3DPRIMITIVE makes the write set unbounded");
        assert_eq!(sink.0, vec![0x30, 0x31, 0x32, 0]);
        for &(gpa, len) in &mem.writes {
            for g in gpa / PAGE_SIZE..=(gpa + len as u64 - 1) / PAGE_SIZE {
                assert!(sink.0.contains(&g), "write to {g:#x} not in the write set");
            }
        }
    }

    /// The write-set analysis GVT-g's scanner hook applies
    /// ([`command_write`]) bounds what this streamer writes: random rings
    /// of GGTT commands, every guest write either in the analysis' frames
    /// (or the context image it writes back) or in a command the analysis
    /// calls unbounded.
    #[test]
    fn command_write_analysis_covers_the_streamers_writes() {
        use crate::writeset::command::{command_write, record_write, CmdWrite};
        let mut rng = crate::testutil::Rng::new(5);
        let mut checked = 0;
        for _ in 0..300 {
            let (mut v, mut mem) = rig();
            let mut ring = Vec::new();
            let mut cmds = Vec::new();
            for _ in 0..1 + rng.below(6) {
                let a = G + 0x20000 + (rng.below(64 * 1024) as u32 & !7);
                let c: Vec<u32> = match rng.below(6) {
                    0 => vec![(0x20 << 23) | (1 << 22) | 2, a, 0, 1],
                    1 => vec![(0x20 << 23) | (1 << 22) | 3, a | 4, 0, 1, 2],
                    2 => vec![(0x26 << 23) | (1 << 14) | 2, a | 4, 0, 1],
                    3 => vec![0x7a00_0004, (1 << 24) | (1 << 14), a, 0, 1, 2],
                    4 => {
                        let (y1, x1) = (rng.below(8) as u32, rng.below(512) as u32);
                        let (y2, x2) =
                            (y1 + 1 + rng.below(8) as u32, x1 + 1 + rng.below(512) as u32);
                        vec![
                            (2 << 29) | (0x50 << 22) | 5,
                            (3 << 24) | 4096,
                            (y1 << 16) | x1,
                            (y2 << 16) | x2,
                            a & !0xfff,
                            0,
                            7,
                        ]
                    }
                    _ => {
                        let y2 = 1 + rng.below(6) as u32;
                        vec![
                            (2 << 29) | (0x53 << 22) | 8,
                            (3 << 24) | 4096,
                            0,
                            (y2 << 16) | 64,
                            a & !0xfff,
                            0,
                            0,
                            4096,
                            G + 0x80000,
                            0,
                        ]
                    }
                };
                ring.extend_from_slice(&c);
                cmds.push(c);
            }
            run_ring(&mut v, &mut mem, &ring).unwrap();
            let mut frames: Vec<u64> = vec![0];
            let mut unbounded = false;
            let mut sink = |g: u64| frames.push(g);
            for c in &cmds {
                let w = command_write(c, crate::cmd::Mode::GGTT);
                if w == CmdWrite::Unbounded {
                    unbounded = true;
                }
                record_write(
                    w,
                    |_, a| v.translate_ggtt(a).ok().map(|gpa| gpa / PAGE_SIZE),
                    &mut sink,
                );
            }
            assert!(!unbounded);
            for &(gpa, len) in &mem.writes {
                for g in gpa / PAGE_SIZE..=(gpa + len as u64 - 1) / PAGE_SIZE {
                    assert!(
                        frames.contains(&g),
                        "write to {g:#x} not in {frames:x?} of {cmds:x?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 300);
    }

    #[test]
    fn hostile_commands_fault_without_stray_writes() {
        let cases: &[(&[u32], FaultKind)] = &[
            (&[0x3f << 23, 0, 0, 0], FaultKind::UnknownOpcode),
            (
                &[(0x20 << 23) | (1 << 22) | 2, 0x1000, 0, 1],
                FaultKind::OutsidePartition,
            ),
            (
                &[(0x20 << 23) | (1 << 22) | 2, G + (8 << 20), 0, 1],
                FaultKind::Unmapped,
            ),
            (&[(0x20 << 23) | 2, 0x1000, 0, 1], FaultKind::Unmapped),
            // MI_LOAD_REGISTER_IMM of an even length (half a pair).
            (&[(0x22 << 23) | 2, 0x4400, 0, 0], FaultKind::BadCommand),
            // GFXPIPE and 2D opcodes the parser does not know.
            (&[0x7fff_0000, 0, 0, 0], FaultKind::UnknownOpcode),
            (
                &[(2 << 29) | (0x7f << 22), 0, 0, 0],
                FaultKind::UnknownOpcode,
            ),
            // XY_COLOR_BLT of the wrong length.
            (
                &[(2 << 29) | (0x50 << 22) | 2, 0, 0, 0],
                FaultKind::BadCommand,
            ),
            (&[0x0a << 23, 0, 0, 0], FaultKind::BadCommand),
            // A batch that jumps to itself forever.
            (&[(0x31 << 23) | 1, G + 4096, 0, 0], FaultKind::Budget),
        ];
        for (ring, kind) in cases {
            let (mut v, mut mem) = rig();
            let before = mem.bytes.clone();
            let f = run_ring(&mut v, &mut mem, ring).unwrap_err();
            assert_eq!(f.kind, *kind, "{ring:x?}");
            // Only the test's own set-up writes happened.
            assert_eq!(mem.bytes[8192..], before[8192..]);
            let mut b = [0u8; 4];
            v.region_read(0, super::super::regs::FAULT_STATUS, &mut b)
                .unwrap();
            assert_eq!(u32::from_le_bytes(b), *kind as u32);
        }
    }

    #[test]
    fn bad_rings_fault() {
        let g = (PBASE + 4096) as u32;
        let sdi = [(0x20 << 23) | (1 << 22) | 2, G + 0x20000];
        // (context image, ring): tail beyond the ring, no LRC magic, and
        // a tail that cuts an MI_STORE_DATA_IMM in half.
        let cases: [([u32; 7], &[u32]); 3] = [
            ([LRC_MAGIC, g, 8192, 0, 9000, 0, 0], &[]),
            ([0; 7], &[]),
            ([LRC_MAGIC, g, 8192, 0, 8, 0, 0], &sdi),
        ];
        for (ctx, ring) in cases {
            let (mut v, mut mem) = rig();
            put(&mut mem, 4096, ring);
            put(&mut mem, 0, &ctx);
            v.submit(PBASE);
            let d = v.take_submission().unwrap();
            let f = v.execute(d, &mut mem, &mut |_| {}).unwrap_err();
            assert_eq!(f.kind, FaultKind::BadRing, "{ctx:x?}");
        }
    }

    #[test]
    fn completion_updates_csb_and_irq() {
        let (mut v, mut mem) = rig();
        v.region_write(
            0,
            super::super::regs::MASTER_IRQ,
            &(1u32 << 31).to_le_bytes(),
        )
        .unwrap();
        v.region_write(0, super::super::regs::RCS_IMR, &0u32.to_le_bytes())
            .unwrap();
        assert!(!v.irq_pending());
        run_ring(&mut v, &mut mem, &[0, 0]).unwrap();
        assert!(v.irq_pending());
        let mut b = [0u8; 4];
        v.region_read(0, super::super::regs::CSB_PTR, &mut b)
            .unwrap();
        let wp = u32::from_le_bytes(b) & 7;
        v.region_read(0, super::super::regs::CSB + 8 * u64::from(wp) + 4, &mut b)
            .unwrap();
        assert_eq!(
            u32::from_le_bytes(b),
            5,
            "context id of the completed context"
        );
        v.region_write(0, super::super::regs::RCS_IIR, &u32::MAX.to_le_bytes())
            .unwrap();
        assert!(!v.irq_pending());
    }

    /// Commands iris emits that the streamer runs without effect: no
    /// fault; those that write memory reach the sink (MI_STORE_REGISTER_MEM
    /// and a timestamp PIPE_CONTROL their frames, MI_ATOMIC and a
    /// dispatch without pipeline state unbounded).
    #[test]
    fn iris_commands_run_and_record_their_writes() {
        use crate::testutil::Sink;
        let ring: &[u32] = &[
            // MI_LOAD_REGISTER_IMM to a register the model does not keep.
            (0x22 << 23) | 1,
            0x2580,
            0x1234,
            // MI_MATH, MI_PREDICATE, MI_SET_PREDICATE, MI_ARB_CHECK.
            (0x1a << 23) | 1,
            0,
            0,
            0x0c << 23,
            0x01 << 23,
            0x05 << 23,
            // MI_LOAD_REGISTER_MEM, MI_CONDITIONAL_BATCH_BUFFER_END,
            // MI_SEMAPHORE_WAIT (GGTT).
            (0x29 << 23) | (1 << 22) | 2,
            0x2400,
            G + 0x20000,
            0,
            (0x36 << 23) | (1 << 22) | 2,
            0,
            G + 0x20000,
            0,
            (0x1c << 23) | (1 << 22) | 2,
            0,
            G + 0x20000,
            0,
            // MEDIA_VFE_STATE.
            0x7000_0007,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            // MI_STORE_REGISTER_MEM (GGTT) to 0x30000.
            (0x24 << 23) | (1 << 22) | 2,
            0x2358,
            G + 0x30000,
            0,
            // PIPE_CONTROL writing a timestamp (post-sync op 3) to 0x40000.
            0x7a00_0004,
            (1 << 24) | (3 << 14),
            G + 0x40000,
            0,
            0,
            0,
        ];
        let (mut v, mut mem) = rig();
        let mut sink = Sink(Vec::new(), false);
        run_ring_into(&mut v, &mut mem, ring, &mut sink).unwrap();
        assert_eq!(
            (sink.0.as_slice(), sink.1),
            (&[0x30u64, 0x40, 0][..], false)
        );
        // MI_ATOMIC and GPGPU_WALKER (no pipeline state kept): unbounded.
        let mut walker = vec![0x7105_000d];
        walker.resize(15, 0);
        for ring in [vec![(0x2f << 23) | (1 << 22) | 1, G + 0x50000, 0], walker] {
            let (mut v, mut mem) = rig();
            let mut sink = Sink(Vec::new(), false);
            run_ring_into(&mut v, &mut mem, &ring, &mut sink).unwrap();
            assert!(sink.1, "{:#x} is unbounded", ring[0]);
        }
    }

    use crate::writeset::state::tests as st;

    /// Guest-physical layout of the draw rig: PPGTT tables from PML4 on,
    /// the batch, the state tracker tests' surface state and instruction
    /// pages, and their 256x256 RGBA8 render target (64 pages).
    const PML4: u64 = 0x10_0000;
    const BATCH_VA: u64 = 0x50_0000;
    const BATCH_GPA: u64 = 0x20_0000;
    use crate::writeset::scan::tests::{RT_GPA, RT_PAGES, SS_GPA};

    type Vgpu = SimVgpu<Vec<u64>, Vec<CtxSlot>>;

    /// Maps GPU virtual page `va` to guest frame `gpa` in the PPGTT at
    /// [`PML4`], taking new tables from `next` on.
    fn map(mem: &mut VecMem, next: &mut u64, va: u64, gpa: u64) {
        crate::writeset::scan::tests::map(mem, PML4, next, va, gpa);
    }

    /// The state tracker tests' draw set-up, `extra`, 3DPRIMITIVE, end.
    fn draw_batch(extra: &[u32]) -> Vec<u32> {
        let mut b: Vec<u32> = st::setup().concat();
        b.extend_from_slice(extra);
        b.extend_from_slice(&st::DRAW);
        b.push(0x0a << 23);
        b
    }

    /// A vGPU keeping `slots` context states, guest memory holding the
    /// draw state behind a PPGTT, `batch` at [`BATCH_VA`], a ring calling
    /// it, and the context image (flags dword `flags`) at 0.
    fn draw_rig(batch: &[u32], flags: u32, slots: usize) -> (Vgpu, VecMem) {
        let (v, mut mem) = rig();
        let v = v.with_contexts(vec![CtxSlot::EMPTY; slots]);
        let mut next = PML4 + 4096;
        crate::writeset::scan::tests::draw_state(&mut mem, PML4, &mut next);
        for i in 0..(4 * batch.len() as u64).div_ceil(PAGE_SIZE) {
            map(
                &mut mem,
                &mut next,
                BATCH_VA + i * 4096,
                BATCH_GPA + i * 4096,
            );
        }
        assert!(next <= BATCH_GPA);
        put(&mut mem, BATCH_GPA, batch);
        put(
            &mut mem,
            4096,
            &[(0x31 << 23) | (1 << 8) | 1, BATCH_VA as u32, 0, 0],
        );
        put(
            &mut mem,
            0,
            &[
                LRC_MAGIC,
                (PBASE + 4096) as u32,
                8192,
                0,
                16,
                PML4 as u32,
                0,
                flags,
            ],
        );
        (v, mem)
    }

    /// Runs the rig's context from ring offset 0 (its flags as the image
    /// has them now): the write set.
    fn run_draw(v: &mut Vgpu, mem: &mut VecMem) -> Sink {
        put(mem, 12, &[0]);
        v.submit(PBASE | (5 << 32));
        let d = v.take_submission().unwrap();
        let mut sink = Sink(Vec::new(), false);
        v.execute(d, mem, &mut sink).unwrap();
        sink.0.sort_unstable();
        sink.0.dedup();
        sink
    }

    use crate::testutil::Sink;

    /// Every frame the rig's PPGTT maps (kernel, surface state, render
    /// target, batch), and the context image's: the write set of a draw
    /// whose writes are not bounded.
    fn mapped_frames(mem: &mut VecMem) -> Vec<u64> {
        let mut want = vec![0];
        Ppgtt::new(PML4, Format::Sim)
            .record_all(mem, &mut |f| want.push(f))
            .unwrap();
        want.sort_unstable();
        want
    }

    /// The render target's frames and the context image's.
    fn rt_frames() -> Vec<u64> {
        let mut want = vec![0];
        want.extend(RT_GPA / PAGE_SIZE..RT_GPA / PAGE_SIZE + RT_PAGES);
        want
    }

    /// A draw as iris emits it (state base addresses, binding table,
    /// shader stages, 3DPRIMITIVE) in a PPGTT batch: the write set is its
    /// render target's frames, through the PPGTT, and the context image.
    #[test]
    fn an_iris_draw_writes_its_render_target_frames() {
        let (mut v, mut mem) = draw_rig(&draw_batch(&[]), LRC_FRESH, 8);
        let s = run_draw(&mut v, &mut mem);
        assert!(!s.1, "bounded");
        assert_eq!(s.0, rt_frames());
    }

    /// The fresh flag: a context never run has the golden state (no
    /// binding table pool), one of unknown state has not; the flag is
    /// cleared on write-back and the state kept across submissions, as
    /// long as the vGPU keeps it.
    #[test]
    fn fresh_contexts_start_from_the_golden_state() {
        let batch = draw_batch(&[]);
        let (mut v, mut mem) = draw_rig(&batch, 0, 8);
        let all = mapped_frames(&mut mem);
        assert!(all.len() > rt_frames().len() + 2, "{}", all.len());
        let s = run_draw(&mut v, &mut mem);
        assert_eq!(
            (s.0, s.1),
            (all.clone(), false),
            "state not known: the PPGTT's frames"
        );
        let (mut v, mut mem) = draw_rig(&batch, LRC_FRESH, 8);
        assert!(!run_draw(&mut v, &mut mem).1);
        assert_eq!(get32(&mem, 28), 0, "fresh no more");
        let s = run_draw(&mut v, &mut mem);
        assert_eq!((s.0, s.1), (rt_frames(), false), "the state is kept");
        // Created anew at the same address: fresh again.
        put(&mut mem, 28, &[LRC_FRESH]);
        assert!(!run_draw(&mut v, &mut mem).1);
        // A reset, or a vGPU keeping no state: not known.
        v.reset();
        for i in 0..(MEM as u64 / PAGE_SIZE) {
            v.write_ggtt_entry(
                PBASE + i * PAGE_SIZE,
                Pte::new(i * PAGE_SIZE, 0).unwrap().encode(),
            );
        }
        assert_eq!(run_draw(&mut v, &mut mem).0, all, "reset drops the state");
        let (mut v, mut mem) = draw_rig(&batch, LRC_FRESH, 0);
        let s = run_draw(&mut v, &mut mem);
        assert_eq!((s.0, s.1), (all, false), "no slot");
    }

    /// A bound built on state an earlier command of the submission wrote
    /// is refused: an MI_STORE_DATA_IMM to the binding table entry, an
    /// MI_STORE_REGISTER_MEM to the surface state. A store elsewhere
    /// keeps the draw bounded.
    #[test]
    fn an_mi_atomic_through_the_ppgtt_writes_what_it_maps() {
        let atomic = |g: u32| [(0x2f << 23) | (g << 22) | 1, 0x1000, 0];
        let (mut v, mut mem) = draw_rig(&draw_batch(&atomic(0)), LRC_FRESH, 8);
        let all = mapped_frames(&mut mem);
        let s = run_draw(&mut v, &mut mem);
        assert_eq!((s.0, s.1), (all, false));
        // Through the GGTT: unbounded.
        let (mut v, mut mem) = draw_rig(&draw_batch(&atomic(1)), LRC_FRESH, 8);
        assert!(run_draw(&mut v, &mut mem).1);
    }

    #[test]
    fn a_draw_on_state_written_in_the_same_submission_falls_back_to_the_ppgtt() {
        let sdi = |va: u64| [(0x20 << 23) | 2, va as u32, (va >> 32) as u32, 0];
        let srm = |va: u64| [(0x24 << 23) | 2, 0x2358, va as u32, (va >> 32) as u32];
        for (extra, refused) in [
            (sdi(st::SS + st::BT).to_vec(), true),
            (srm(st::SS + st::SURF + 8).to_vec(), true),
            (sdi(st::SS + 0x800).to_vec(), false),
            (srm(st::SS + 0x800).to_vec(), false),
        ] {
            let (mut v, mut mem) = draw_rig(&draw_batch(&extra), LRC_FRESH, 8);
            let all = mapped_frames(&mut mem);
            let s = run_draw(&mut v, &mut mem);
            assert!(!s.1, "{extra:x?}");
            if refused {
                // Refused: the PPGTT's frames.
                assert_eq!(s.0, all, "{extra:x?}");
            } else {
                let mut want = rt_frames();
                want.push(SS_GPA / PAGE_SIZE);
                want.sort_unstable();
                assert_eq!(s.0, want);
            }
        }
    }
}
