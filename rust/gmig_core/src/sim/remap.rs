// SPDX-License-Identifier: GPL-2.0

//! The sim's use of the remapper: after a restore at another GGTT
//! partition, the pending contexts' descriptors, context images, rings and
//! the batches they start are walked and their graphics addresses moved
//! ([`super::super::remap`] patches each command).

use super::super::cmd::{CmdError, Command, Kind, Level, Mode, Space, MAX_ADDR_CMD_DWORDS};
use super::super::gtt::Partition;
use super::super::mem::GuestMem;
use super::super::remap::*;
use super::exec::{CtxSlot, LRC_MAGIC};
use super::regs::ContextDescriptor;
use super::vgpu::SimVgpu;

/// Dwords walked per pending context at most ([`remap_pending`]).
pub const MAX_DWORDS: u32 = 1 << 16;
/// Batch buffers (chained segments included) entered in all pending
/// contexts together at most ([`remap_pending`]).
pub const MAX_PENDING_BATCHES: u32 = 64;
/// Spans [`remap_pending`] keeps: a context image and two ring pieces per
/// pending context, and the batches.
const MAX_SPANS: usize = 3 * super::vgpu::QUEUE_LEN + MAX_PENDING_BATCHES as usize;

/// A span of graphics (destination) addresses a walk read (16 bytes: the
/// walker keeps [`MAX_SPANS`] of them on the stack).
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    len: u32,
    /// For a batch segment, its level (so that it is recognised when
    /// reached again: called twice, or a chain that loops); `None` for
    /// context images and rings.
    entry: Option<Level>,
}

/// Everything a [`remap_pending`] pass read so far.
struct Spans {
    v: [Span; MAX_SPANS],
    n: usize,
}

impl Spans {
    /// Records `[start, end)`; an overlap with a recorded span is an
    /// error.
    fn add(&mut self, start: u64, end: u64, entry: Option<Level>) -> Result<(), RemapError> {
        if end <= start {
            return Ok(());
        }
        let len = u32::try_from(end - start).map_err(|_| RemapError::TooLarge)?;
        for o in self.v.iter().take(self.n) {
            let o_end = o.start.saturating_add(u64::from(o.len));
            if start < o_end && o.start < end {
                return Err(RemapError::OverlappingBatches {
                    addr: start.max(o.start),
                });
            }
        }
        let slot = self.v.get_mut(self.n).ok_or(RemapError::TooManyBatches)?;
        *slot = Span { start, len, entry };
        self.n += 1;
        Ok(())
    }

    /// Whether a batch at `start` entered at `level` was walked already
    /// (then it is not walked again); reaching it at another level is an
    /// error.
    fn walked(&self, start: u64, level: Level) -> Result<bool, RemapError> {
        for o in self.v.iter().take(self.n) {
            if o.start == start {
                return match o.entry {
                    Some(l) if l == level => Ok(true),
                    _ => Err(RemapError::OverlappingBatches { addr: start }),
                };
            }
        }
        Ok(false)
    }
}

/// The pending-context walker of [`remap_pending`].
struct Walk<'a, V, M> {
    vgpu: &'a V,
    mem: &'a mut M,
    map: Remap,
    patch: bool,
    dwords: u32,
    batches: u32,
    patched: u64,
    spans: Spans,
}

/// A buffer in guest memory: a ring (wraps at `size`, stops at `tail`) or
/// a batch (`size` 0).
#[derive(Clone, Copy)]
struct Buf {
    start: u64,
    size: u64,
    tail: u64,
}

impl Buf {
    /// Destination graphics address of dword `i` after byte offset `pos`.
    fn addr(&self, pos: u64, i: usize) -> Option<u64> {
        let off = pos.checked_add(u64::try_from(i).ok()?.checked_mul(4)?)?;
        let off = if self.size != 0 { off % self.size } else { off };
        self.start.checked_add(off)
    }
}

impl<V: PendingSource, M: GuestMem> Walk<'_, V, M> {
    fn rd(&mut self, g: u64) -> Result<u32, RemapError> {
        let gpa = self.vgpu.translate_ggtt(g).ok_or(RemapError::Unmapped(g))?;
        let mut b = [0u8; 4];
        self.mem.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn wr(&mut self, g: u64, v: u32) -> Result<(), RemapError> {
        let gpa = self.vgpu.translate_ggtt(g).ok_or(RemapError::Unmapped(g))?;
        self.mem.write(gpa, &v.to_le_bytes())?;
        Ok(())
    }

    /// Moves a source GGTT address held in a plain dword (descriptor,
    /// context image field).
    fn moved(&self, addr: u64, at: Loc) -> Result<u64, RemapError> {
        self.map
            .translate(addr)
            .ok_or(RemapError::OutsidePartition { at, addr })
    }

    /// Records the ring span walked from `head` over `walked` bytes.
    fn ring_walked(&mut self, b: Buf, head: u64, walked: u64) -> Result<(), RemapError> {
        // Around the ring more than once: the same dwords twice.
        if walked >= b.size {
            return Err(RemapError::OverlappingBatches { addr: b.start });
        }
        let first = walked.min(b.size - head);
        let at = |off: u64| b.start.checked_add(off).ok_or(RemapError::TooLarge);
        self.spans.add(at(head)?, at(head + first)?, None)?;
        self.spans.add(b.start, at(walked - first)?, None)
    }

    /// Records the batch segment of `b` walked up to byte `end`.
    fn segment_walked(&mut self, b: Buf, end: u64, level: Level) -> Result<(), RemapError> {
        let stop = b.start.checked_add(end).ok_or(RemapError::TooLarge)?;
        self.spans.add(b.start, stop, Some(level))
    }

    /// Walks the commands of `b` from byte offset `pos` at `level`.
    fn run(&mut self, b: Buf, mut pos: u64, level: Level, depth: u32) -> Result<(), RemapError> {
        let mode = Mode::EXECLIST;
        let mut b = b;
        let head = pos;
        let mut walked = 0u64;
        loop {
            if level == Level::Ring && pos == b.tail {
                return self.ring_walked(b, head, walked);
            }
            self.dwords += 1;
            if self.dwords > MAX_DWORDS {
                return Err(RemapError::TooLarge);
            }
            let at = Loc {
                buf: Some(b.start),
                dword: usize::try_from(pos / 4).unwrap_or(usize::MAX),
            };
            // Fetch errors (memory, unmapped) are kept aside: the parser
            // only sees "no dword there".
            let mut fault = None;
            let cmd = Command::decode_with(0, mode, |i| {
                if i >= MAX_ADDR_CMD_DWORDS {
                    return None;
                }
                let g = b.addr(pos, i)?;
                match self.rd(g) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        fault = Some(e);
                        None
                    }
                }
            });
            if let Some(e) = fault {
                return Err(e);
            }
            let cmd = cmd.map_err(|err| RemapError::Command { at, err })?;
            let nest = RemapError::Command {
                at,
                err: CmdError::BadNesting { offset: 0 },
            };
            if cmd.opaque == Some(Space::Ggtt) {
                return Err(RemapError::Unsupported {
                    at,
                    header: cmd.header,
                });
            }
            let mut target = None;
            for a in cmd.addrs().iter().filter(|a| a.space == Space::Ggtt) {
                let glo = b.addr(pos, a.dword).ok_or(RemapError::TooLarge)?;
                let ghi = b.addr(pos, a.dword + 1).ok_or(RemapError::TooLarge)?;
                let lo = self.rd(glo)?;
                let hi = if a.dwords() == 2 { self.rd(ghi)? } else { 0 };
                let (new, nlo, nhi) = self.map.moved(a, lo, hi, at)?;
                if self.patch {
                    self.wr(glo, nlo)?;
                    if a.dwords() == 2 {
                        self.wr(ghi, nhi)?;
                    }
                    self.patched += 1;
                }
                target = Some(new);
            }
            let len = u64::try_from(cmd.len).map_err(|_| RemapError::TooLarge)?;
            let bytes = len.checked_mul(4).ok_or(RemapError::TooLarge)?;
            let end = pos.checked_add(bytes).ok_or(RemapError::TooLarge)?;
            match cmd.kind {
                Kind::MiBatchBufferEnd => {
                    if level == Level::Ring {
                        return Err(nest);
                    }
                    return self.segment_walked(b, end, level);
                }
                Kind::MiBatchBufferStart { space, .. } => {
                    let next = cmd.target_level(level).ok_or(nest)?;
                    if space == Space::Ggtt {
                        let t = target.ok_or(nest)?;
                        self.batches += 1;
                        if self.batches > MAX_PENDING_BATCHES || depth >= 2 {
                            return Err(RemapError::TooManyBatches);
                        }
                        let batch = Buf {
                            start: t,
                            size: 0,
                            tail: 0,
                        };
                        if level == Level::Batch && next == Level::Batch {
                            // Chained: the batch continues there (unless
                            // it was walked already: a loop).
                            self.segment_walked(b, end, level)?;
                            if self.spans.walked(t, next)? {
                                return Ok(());
                            }
                            b = batch;
                            pos = 0;
                            continue;
                        }
                        if !self.spans.walked(t, next)? {
                            self.run(batch, 0, next, depth + 1)?;
                        }
                    } else if level == Level::Batch && next == Level::Batch {
                        // Chained into a PPGTT batch: not followed.
                        return self.segment_walked(b, end, level);
                    }
                }
                _ => {}
            }
            walked = walked.checked_add(bytes).ok_or(RemapError::TooLarge)?;
            pos = end;
            if b.size != 0 {
                pos %= b.size;
            }
        }
    }
}

/// Remaps the pending contexts of a sim vGPU restored at `dst` whose state
/// was saved at `src` (same size): each pending descriptor's LRCA, each
/// context image's ring start, and the GGTT addresses of the commands from
/// ring head to tail and of the GGTT batches they start. Returns the
/// number of graphics addresses rewritten. Validates everything first; on
/// error neither guest memory nor the pending queue is changed.
pub fn remap_pending<
    S: core::ops::DerefMut<Target = [u64]>,
    C: core::ops::DerefMut<Target = [CtxSlot]>,
    M: GuestMem,
>(
    vgpu: &mut SimVgpu<S, C>,
    src: Partition,
    dst: Partition,
    mem: &mut M,
) -> Result<u64, RemapError> {
    let (patched, new_descs) = remap_pending_of(&*vgpu, src, dst, mem)?;
    for (d, n) in vgpu.pending_mut().iter_mut().zip(new_descs) {
        *d = n;
    }
    Ok(patched)
}

/// What [`remap_pending_of`] reads of a restored vGPU: its pending
/// descriptors and its GGTT. A restore implements it over the incoming
/// image, so that the remap is validated before the vGPU changes.
pub trait PendingSource {
    /// Pending context descriptors, oldest first.
    fn pending(&self) -> &[u64];
    /// Guest physical address of GGTT graphics address `gaddr`.
    fn translate_ggtt(&self, gaddr: u64) -> Option<u64>;
}

impl<S: core::ops::DerefMut<Target = [u64]>, C: core::ops::DerefMut<Target = [CtxSlot]>>
    PendingSource for SimVgpu<S, C>
{
    fn pending(&self) -> &[u64] {
        SimVgpu::pending(self)
    }

    fn translate_ggtt(&self, gaddr: u64) -> Option<u64> {
        SimVgpu::translate_ggtt(self, gaddr).ok()
    }
}

/// [`remap_pending`] over any [`PendingSource`]: patches guest memory
/// (after validating everything) and returns the number of addresses
/// rewritten and the remapped descriptors, in pending order, for the caller
/// to install.
pub fn remap_pending_of<V: PendingSource, M: GuestMem>(
    vgpu: &V,
    src: Partition,
    dst: Partition,
    mem: &mut M,
) -> Result<(u64, [u64; super::vgpu::QUEUE_LEN]), RemapError> {
    let map = Remap::new(src, dst)?;
    let mut new_descs = [0u64; super::vgpu::QUEUE_LEN];
    let mut patched = 0;
    for patch in [false, true] {
        let mut w = Walk {
            vgpu,
            mem: &mut *mem,
            map,
            patch,
            dwords: 0,
            batches: 0,
            patched: 0,
            spans: Spans {
                v: [Span {
                    start: 0,
                    len: 0,
                    entry: None,
                }; MAX_SPANS],
                n: 0,
            },
        };
        let vg = w.vgpu;
        let pending = vg.pending();
        for (i, &desc) in pending.iter().enumerate() {
            let lrca_src = ContextDescriptor(desc).lrca();
            let at = Loc {
                buf: None,
                dword: i,
            };
            let lrca = w.moved(lrca_src, at)?;
            let new_desc = ContextDescriptor(desc).with_lrca(lrca).0;
            if let Some(d) = new_descs.get_mut(i) {
                *d = new_desc;
            }
            // The same context submitted again: its image, ring and
            // batches are remapped once.
            let again = pending
                .get(..i)
                .is_some_and(|p| p.iter().any(|&e| ContextDescriptor(e).lrca() == lrca_src));
            if again {
                if patch {
                    w.patched += 1; // the descriptor
                }
                continue;
            }
            // Dwords 0-4 are read, dword 1 is rewritten.
            w.spans.add(
                lrca,
                lrca.checked_add(20).ok_or(RemapError::TooLarge)?,
                None,
            )?;
            if w.rd(lrca)? != LRC_MAGIC {
                return Err(RemapError::BadContext(lrca));
            }
            let ring_start = u64::from(w.rd(lrca + 4)?);
            let size = u64::from(w.rd(lrca + 8)?);
            let head = u64::from(w.rd(lrca + 12)?);
            let tail = u64::from(w.rd(lrca + 16)?);
            if size == 0 || head >= size || tail >= size || head % 4 != 0 || tail % 4 != 0 {
                return Err(RemapError::BadContext(lrca));
            }
            let start = w.moved(
                ring_start,
                Loc {
                    buf: Some(lrca),
                    dword: 1,
                },
            )?;
            let start32 = u32::try_from(start).map_err(|_| RemapError::AddressOverflow {
                at: Loc {
                    buf: Some(lrca),
                    dword: 1,
                },
                addr: start,
            })?;
            if patch {
                w.wr(lrca + 4, start32)?;
                w.patched += 2; // descriptor and ring start
            }
            w.dwords = 0;
            let ring = Buf { start, size, tail };
            w.run(ring, head, Level::Ring, 0)?;
        }
        patched = w.patched;
    }
    Ok((patched, new_descs))
}
