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
//!
//! The streamer runs the ring from head to tail (wrapping) and executes a
//! Gen9 subset (encodings as in i915's `intel_gpu_commands.h` and GVT-g's
//! `cmd_parser.c`): MI_NOOP, MI_USER_INTERRUPT, MI_BATCH_BUFFER_START
//! (GGTT or PPGTT, chained or second level), MI_BATCH_BUFFER_END,
//! MI_STORE_DATA_IMM, MI_LOAD_REGISTER_IMM (to a few allowed registers),
//! MI_FLUSH_DW and PIPE_CONTROL with a post-sync immediate write,
//! XY_COLOR_BLT and XY_SRC_COPY_BLT (32 bpp, GGTT addresses), and skips
//! other GFXPIPE (3D) state commands by their length. Every graphics
//! address goes through the vGPU's GGTT partition or the context's 4-level
//! PPGTT; every access to guest memory goes through [`GuestMem`]. An unknown
//! opcode, an address outside the partition, a non-present entry, a guest
//! memory fault, a bad ring, or an exhausted budget stops the context with a
//! [`Fault`].

use super::super::gtt::{Pte, PAGE_SIZE};
use super::super::mem::{GuestMem, MemFault};
use super::super::writeset::{command::writes_through_state, WriteSink};
use super::regs::{ContextDescriptor, CTX_CONTROL, RCS_IMR, RING_CTL};
use super::vgpu::SimVgpu;

/// Magic of a gmig-sim context image, "GMLC".
pub const LRC_MAGIC: u32 = 0x434c_4d47;
/// Context image dword 7, bit 0: the context has not run since it was
/// created (its pipeline state is the golden one).
pub const LRC_FRESH: u32 = 1;
/// Commands executed per submission at most.
pub const MAX_COMMANDS: u32 = 1 << 16;
/// Bytes written by blits per submission at most.
pub const MAX_BLIT_BYTES: u64 = 64 << 20;
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
    /// MI_LOAD_REGISTER_IMM to a register the guest may not load.
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

struct Ctx<'a, S, M> {
    vgpu: &'a SimVgpu<S>,
    mem: &'a mut M,
    pml4: u64,
    stats: ExecStats,
    blit_bytes: u64,
    budget: Budget,
}

impl<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem> Ctx<'_, S, M> {
    fn translate(&mut self, space: Space, gaddr: u64) -> Result<u64, Fault> {
        match space {
            Space::Ggtt => self.vgpu.translate_ggtt(gaddr),
            Space::Ppgtt => {
                if self.pml4 == 0 || gaddr >> 48 != 0 {
                    return Err(Fault::new(FaultKind::Unmapped, gaddr));
                }
                // The PML4 address comes from the guest's context image (64
                // bits): adding the entry offset can overflow.
                let mut table = self.pml4;
                for shift in [39u32, 30, 21, 12] {
                    let idx = (gaddr >> shift) & 511;
                    let entry = table
                        .checked_add(idx * 8)
                        .ok_or(Fault::new(FaultKind::GuestMemory, table))?;
                    let mut e = [0u8; 8];
                    self.mem.read(entry, &mut e)?;
                    let pte = Pte::decode(u64::from_le_bytes(e))
                        .ok_or(Fault::new(FaultKind::Unmapped, gaddr))?;
                    table = pte.addr;
                }
                Ok(table + gaddr % PAGE_SIZE)
            }
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

    /// Tells `sink` the guest frames behind `len` bytes at graphics
    /// address `gaddr`: the write set of a command, derived from its
    /// fields before it runs. Stops at the first page that does not
    /// translate (the write faults there, nothing beyond it is written).
    fn record(&mut self, space: Space, gaddr: u64, len: u64, sink: &mut impl WriteSink) {
        let Some(end) = gaddr.checked_add(len) else {
            return;
        };
        let mut a = gaddr;
        while a < end {
            match self.translate(space, a) {
                Ok(gpa) => sink.may_write(gpa / PAGE_SIZE),
                Err(_) => return,
            }
            a = (a / PAGE_SIZE + 1) * PAGE_SIZE;
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
}

fn addr48(lo: u32, hi: u32) -> u64 {
    (u64::from(lo) | (u64::from(hi & 0xffff) << 32)) & !3
}

/// Runs the context `desc` of `vgpu` to completion or fault.
pub(super) fn run<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem>(
    vgpu: &mut SimVgpu<S>,
    desc: u64,
    mem: &mut M,
    sink: &mut impl WriteSink,
    budget: Budget,
) -> Result<ExecStats, Fault> {
    let lrca = ContextDescriptor(desc).lrca();
    let mut image = [0u8; 28];
    let (stats, head_tail) = {
        let mut c = Ctx {
            vgpu,
            mem,
            pml4: 0,
            stats: ExecStats::default(),
            blit_bytes: 0,
            budget,
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
        let (start, size, head, tail) = (dw(1), dw(2), dw(3), dw(4));
        c.pml4 = u64::from(dw(5)) | (u64::from(dw(6)) << 32);
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
        run_cursor(&mut c, ring, sink)?;
        // Write back head = tail (the engine saves the context image).
        c.write_recorded(Space::Ggtt, lrca + 12, &tail.to_le_bytes(), sink)?;
        (c.stats, (start, tail, size))
    };
    let (start, tail, size) = head_tail;
    vgpu.set_ring_view(start, tail, tail, size.saturating_sub(PAGE_SIZE as u32) | 1);
    Ok(stats)
}

fn run_cursor<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem>(
    c: &mut Ctx<'_, S, M>,
    ring: Cursor,
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
    let mut stack = [ring; MAX_DEPTH];
    let mut depth = 0usize;
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
        let fetch = |c: &mut Ctx<'_, S, M>, i: u64| c.read32(cur.space, cur.addr(i)).map_err(at);
        let client = dw0 >> 29;
        let len: u64;
        match client {
            0 => {
                let op = (dw0 >> 23) & 0x3f;
                match op {
                    0x00 => len = 1, // MI_NOOP
                    0x02 => {
                        // MI_USER_INTERRUPT
                        c.stats.user_interrupts += 1;
                        len = 1;
                    }
                    0x0a => {
                        // MI_BATCH_BUFFER_END
                        if depth == 0 {
                            return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                        }
                        depth -= 1;
                        continue;
                    }
                    0x20 => {
                        // MI_STORE_DATA_IMM: dw1-2 address, then 1 or 2 data dwords.
                        len = u64::from(dw0 & 0x3ff) + 2;
                        if !(4..=5).contains(&len) {
                            return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                        }
                        let space = if dw0 & (1 << 22) != 0 {
                            Space::Ggtt
                        } else {
                            Space::Ppgtt
                        };
                        let addr = addr48(fetch(c, 1)?, fetch(c, 2)?);
                        store_imm(c, space, addr, len, &fetch, sink).map_err(at)?;
                    }
                    0x22 => {
                        // MI_LOAD_REGISTER_IMM: (offset, value) pairs.
                        len = u64::from(dw0 & 0xff) + 2;
                        if len.is_multiple_of(2) {
                            return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                        }
                        for i in (1..len).step_by(2) {
                            let reg = u64::from(fetch(c, i)? & 0x7f_fffc);
                            if reg != RCS_IMR && reg != RING_CTL && reg != CTX_CONTROL {
                                return Err(at(Fault::new(FaultKind::ForbiddenRegister, reg)));
                            }
                        }
                    }
                    0x26 => {
                        // MI_FLUSH_DW: post-sync op in bits 15:14, dw1 bit 2 = GGTT.
                        len = u64::from(dw0 & 0x3f) + 2;
                        if !(4..=5).contains(&len) {
                            return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                        }
                        if (dw0 >> 14) & 3 == 1 {
                            let lo = fetch(c, 1)?;
                            let space = if lo & 4 != 0 {
                                Space::Ggtt
                            } else {
                                Space::Ppgtt
                            };
                            let addr = addr48(lo & !7, fetch(c, 2)?);
                            store_imm(c, space, addr, len, &fetch, sink).map_err(at)?;
                        }
                    }
                    0x31 => {
                        // MI_BATCH_BUFFER_START: bit 8 PPGTT, bit 22 second level.
                        len = u64::from(dw0 & 0xff) + 2;
                        if len != 3 {
                            return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                        }
                        let space = if dw0 & (1 << 8) != 0 {
                            Space::Ppgtt
                        } else {
                            Space::Ggtt
                        };
                        let addr = addr48(fetch(c, 1)?, fetch(c, 2)?);
                        let batch = Cursor {
                            space,
                            start: addr,
                            size: 0,
                            pos: 0,
                            tail: 0,
                        };
                        let second = dw0 & (1 << 22) != 0;
                        if depth == 0 || second {
                            // Call: return to the next command afterwards.
                            stack[depth].advance(len);
                            depth += 1;
                            if depth >= MAX_DEPTH {
                                return Err(at(Fault::new(FaultKind::Budget, addr)));
                            }
                        }
                        // Chained (first level to first level): replace.
                        stack[depth] = batch;
                        continue;
                    }
                    _ => return Err(at(Fault::new(FaultKind::UnknownOpcode, u64::from(dw0)))),
                }
            }
            2 => {
                len = u64::from(dw0 & 0xff) + 2;
                let op = (dw0 >> 22) & 0x7f;
                match (op, len) {
                    (0x50, 7) => {
                        // XY_COLOR_BLT
                        let br13 = fetch(c, 1)?;
                        let (y1x1, y2x2) = (fetch(c, 2)?, fetch(c, 3)?);
                        let dst = addr48(fetch(c, 4)?, fetch(c, 5)?);
                        let color = fetch(c, 6)?;
                        blit(c, br13, y1x1, y2x2, dst, None, color, sink).map_err(at)?;
                    }
                    (0x53, 10) => {
                        // XY_SRC_COPY_BLT
                        let br13 = fetch(c, 1)?;
                        let (y1x1, y2x2) = (fetch(c, 2)?, fetch(c, 3)?);
                        let dst = addr48(fetch(c, 4)?, fetch(c, 5)?);
                        let sy1x1 = fetch(c, 6)?;
                        let spitch = fetch(c, 7)? & 0xffff;
                        let src = addr48(fetch(c, 8)?, fetch(c, 9)?);
                        blit(
                            c,
                            br13,
                            y1x1,
                            y2x2,
                            dst,
                            Some((sy1x1, spitch, src)),
                            0,
                            sink,
                        )
                        .map_err(at)?;
                    }
                    _ => return Err(at(Fault::new(FaultKind::UnknownOpcode, u64::from(dw0)))),
                }
            }
            3 => {
                len = u64::from(dw0 & 0xff) + 2;
                if dw0 & 0xffff_0000 == 0x7a00_0000 {
                    // PIPE_CONTROL: dw1 bits 15:14 post-sync op, bit 24 GGTT.
                    if len != 6 {
                        return Err(at(Fault::new(FaultKind::BadCommand, cur.addr(0))));
                    }
                    let dw1 = fetch(c, 1)?;
                    if (dw1 >> 14) & 3 == 1 {
                        let space = if dw1 & (1 << 24) != 0 {
                            Space::Ggtt
                        } else {
                            Space::Ppgtt
                        };
                        let addr = addr48(fetch(c, 2)? & !7, fetch(c, 3)?);
                        let mut data = [0u8; 8];
                        data[..4].copy_from_slice(&fetch(c, 4)?.to_le_bytes());
                        data[4..].copy_from_slice(&fetch(c, 5)?.to_le_bytes());
                        c.write_recorded(space, addr, &data, sink).map_err(at)?;
                    }
                } else if writes_through_state(dw0) {
                    // A real GPU writes the bound render targets, UAVs or
                    // media surfaces here: state this streamer does not
                    // follow, so the command's write set is unknown.
                    sink.unbounded();
                }
                // Other GFXPIPE state commands have no effect on memory here.
            }
            _ => return Err(at(Fault::new(FaultKind::UnknownOpcode, u64::from(dw0)))),
        }
        let cur = &mut stack[depth];
        if depth == 0 {
            // The whole command must lie between head and tail.
            let avail = (cur.tail + cur.size - cur.pos) % cur.size;
            if len * 4 > avail {
                return Err(Fault {
                    offset: cur.pos as u32,
                    ..Fault::new(FaultKind::BadRing, cur.addr(0))
                });
            }
        }
        cur.advance(len);
    }
}

/// The immediate-data write of MI_STORE_DATA_IMM and MI_FLUSH_DW: the
/// command's `len - 3` data dwords (one or two, from dword 3 on) go to
/// `addr`.
fn store_imm<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem>(
    c: &mut Ctx<'_, S, M>,
    space: Space,
    addr: u64,
    len: u64,
    fetch: &impl Fn(&mut Ctx<'_, S, M>, u64) -> Result<u32, Fault>,
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
    let mut data = [0u8; 8];
    let n = usize::try_from(len.saturating_sub(3)).unwrap_or(0).min(2);
    for i in 0..n {
        data[4 * i..4 * i + 4].copy_from_slice(&fetch(c, 3 + i as u64)?.to_le_bytes());
    }
    c.write_recorded(space, addr, &data[..4 * n], sink)
}

/// A 32 bpp blit: fill (`src` None) or copy, rows of `x2 - x1` pixels.
#[allow(clippy::too_many_arguments)]
fn blit<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem>(
    c: &mut Ctx<'_, S, M>,
    br13: u32,
    y1x1: u32,
    y2x2: u32,
    dst: u64,
    src: Option<(u32, u32, u64)>,
    color: u32,
    sink: &mut impl WriteSink,
) -> Result<(), Fault> {
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
    for y in y1..y2 {
        c.record(Space::Ggtt, dst + y * pitch + x1 * 4, row, sink);
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
    use crate::gtt::Partition;
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
            (
                &[(0x22 << 23) | 1, 0x4400, 0, 0],
                FaultKind::ForbiddenRegister,
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
}
