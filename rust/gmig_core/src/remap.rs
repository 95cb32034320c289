// SPDX-License-Identifier: GPL-2.0

//! Dynamic graphics address remapping (gMig).
//!
//! When a vGPU is restored at another GGTT partition of the same size, the
//! GGTT entries keep their index in the partition, so every GGTT graphics
//! address its pending work uses moves by `dst.base - src.base`
//! ([`Remap::translate`]). This module rewrites those addresses in command
//! buffers, using [`super::cmd`] to find them:
//!
//! - [`remap_buffer`] patches one buffer (a ring's commands or one batch);
//! - [`remap_chain`] also follows GGTT batch buffers (first level, chained
//!   and second level) through a caller's [`BatchResolver`];
//! - [`unmap_buffer`] / [`Remap::inverse`] undo it (remap with the
//!   partitions swapped): `unmap(remap(buf)) == buf`;
//! - [`remap_pending`] does the same for the sim provider's pending
//!   contexts in guest memory (context descriptors, each context image's
//!   ring start, the ring between head and tail, and the batches it calls).
//!
//! Rules:
//! - A GGTT address field (see [`super::cmd::AddrRef`]) must lie in the
//!   source partition ([`RemapError::OutsidePartition`] otherwise, with
//!   the buffer and dword where it was found); it becomes
//!   `addr - src.base + dst.base`, and flag bits sharing its dwords are
//!   kept. PPGTT addresses are left alone, and PPGTT batches are not
//!   followed: a context's PPGTT does not move, and the hardware runs
//!   PPGTT batches unprivileged, without GGTT access.
//! - A command that carries GGTT addresses the parser cannot locate
//!   ([`super::cmd::Command::opaque`]) is refused
//!   ([`RemapError::Unsupported`]), never passed through; so is any
//!   malformed or unknown command ([`RemapError::Command`]).
//! - Every walk runs twice: the first pass validates everything (every
//!   buffer of a chain included), the second patches. An error therefore
//!   leaves every buffer as it was (for [`remap_chain`]: provided the
//!   resolver hands out the same buffers in both passes, see
//!   [`RemapError::ResolverChanged`]).
//! - Chains are bounded: at most [`ChainLimits::max_batches`] distinct
//!   batches (never more than [`MAX_BATCHES`]) and
//!   [`ChainLimits::max_dwords`] dwords in all. A batch address reached a
//!   second time (a loop, or two calls of the same batch) is remapped once
//!   and not walked again; two batches whose walked dwords overlap are an
//!   error ([`RemapError::OverlappingBatches`]), since patching one would
//!   corrupt the other.
//! - [`remap_pending`] applies the same rule to everything it reads in
//!   guest memory: each pending context image, the ring between head and
//!   tail, every batch segment. Two descriptors naming one context image
//!   (a context submitted twice) and a batch reached again at the same
//!   level (called twice, or a chain that loops) are remapped once and not
//!   walked again; any other overlap between them is an error. So no dword
//!   is read after the patching pass changed it, and the patching pass
//!   takes exactly the path the validation pass took.
//!   // TODO: overlaps are checked by graphics address; two GGTT pages
//!   // mapping one guest page (aliasing) are not detected, and then the
//!   // patching pass can fail after writing (it can never move an
//!   // address twice: a moved address is outside the source partition).

use super::cmd::{AddrRef, CmdError, Command, Cursor, Kind, Level, Mode, Space};
use super::gtt::Partition;
use super::mem::MemFault;

/// Most distinct batch buffers [`remap_chain`] follows from one root.
pub const MAX_BATCHES: usize = 32;

/// Where an error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Source GGTT address of the batch buffer, or `None` for the root
    /// buffer given to [`remap_buffer`]/[`remap_chain`]. For
    /// [`remap_pending`]: the destination graphics address of the ring or
    /// batch buffer start.
    pub buf: Option<u64>,
    /// Dword index of the command in that buffer (for a ring: dwords from
    /// the ring start).
    pub dword: usize,
}

/// Why remapping failed. Nothing was written when one is returned (see
/// the module doc for the one exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapError {
    /// The source and destination partitions differ in size.
    SizeMismatch,
    /// A command could not be parsed.
    Command {
        /// The buffer (dword: where the parser stopped).
        at: Loc,
        /// What the parser said.
        err: CmdError,
    },
    /// A GGTT address outside the source partition.
    OutsidePartition {
        /// The command holding it.
        at: Loc,
        /// The address.
        addr: u64,
    },
    /// A command with GGTT addresses the parser does not locate.
    Unsupported {
        /// The command.
        at: Loc,
        /// Its header dword.
        header: u32,
    },
    /// The moved address does not fit its field (destination beyond the
    /// field's width, or not aligned like the field requires).
    AddressOverflow {
        /// The command holding it.
        at: Loc,
        /// The moved address.
        addr: u64,
    },
    /// The resolver has no buffer for this batch address.
    Unresolved {
        /// Source GGTT address of the batch.
        addr: u64,
    },
    /// More batches than the limit.
    TooManyBatches,
    /// More dwords than the limit.
    TooLarge,
    /// Two batches share dwords (one starts inside the other).
    OverlappingBatches {
        /// Source GGTT address of the later one.
        addr: u64,
    },
    /// The resolver returned no buffer, or another one, for a batch in the
    /// patching pass. Buffers patched before it stay patched.
    ResolverChanged {
        /// Source GGTT address of the batch.
        addr: u64,
    },
    /// A pending context image is not a gmig-sim LRC or has a bad ring.
    BadContext(u64),
    /// Guest memory behind an address is not reachable.
    Memory(MemFault),
    /// A destination graphics address has no present GGTT entry.
    Unmapped(u64),
}

impl From<MemFault> for RemapError {
    fn from(m: MemFault) -> Self {
        RemapError::Memory(m)
    }
}

/// The address map from a source GGTT partition to a destination one of
/// the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remap {
    src: Partition,
    dst: Partition,
}

impl Remap {
    /// The map from `src` to `dst`; they must have the same size.
    pub fn new(src: Partition, dst: Partition) -> Result<Self, RemapError> {
        if src.size != dst.size {
            return Err(RemapError::SizeMismatch);
        }
        Ok(Self { src, dst })
    }

    /// The source partition.
    pub fn src(&self) -> Partition {
        self.src
    }

    /// The destination partition.
    pub fn dst(&self) -> Partition {
        self.dst
    }

    /// The inverse map (destination back to source).
    pub fn inverse(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
        }
    }

    /// `addr - src.base + dst.base`, or `None` if `addr` is outside the
    /// source partition.
    pub fn translate(&self, addr: u64) -> Option<u64> {
        self.src.rebase(addr, &self.dst)
    }

    /// The address of `a` (dwords `lo`, `hi`) moved to the destination,
    /// and its new dwords; an address outside the source partition is an
    /// error at `at`.
    pub(crate) fn moved(
        &self,
        a: &AddrRef,
        lo: u32,
        hi: u32,
        at: Loc,
    ) -> Result<(u64, u32, u32), RemapError> {
        let addr = a.extract(lo, hi);
        let new = self
            .translate(addr)
            .ok_or(RemapError::OutsidePartition { at, addr })?;
        let (nlo, nhi) = a
            .merge(lo, hi, new)
            .ok_or(RemapError::AddressOverflow { at, addr: new })?;
        Ok((new, nlo, nhi))
    }
}

/// Limits of a [`remap_chain`] walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLimits {
    /// Distinct batch buffers followed at most (capped at [`MAX_BATCHES`]).
    pub max_batches: usize,
    /// Dwords walked in all buffers at most.
    pub max_dwords: usize,
}

impl Default for ChainLimits {
    fn default() -> Self {
        Self {
            max_batches: MAX_BATCHES,
            max_dwords: 1 << 20,
        }
    }
}

/// Gives [`remap_chain`] the batch buffers a command buffer starts.
pub trait BatchResolver {
    /// The dwords of the batch buffer at source GGTT address `addr` (the
    /// address as found in the command, before remapping), from `addr` on;
    /// the slice may run past the batch's end. `None` if there is none.
    /// Called twice per batch (validation, then patching): it must return
    /// the same buffer both times.
    fn batch(&mut self, addr: u64) -> Option<&mut [u32]>;
}

/// What one pass over a buffer found.
struct Scan {
    dwords: usize,
    addrs: u64,
}

fn check(cmd: &Command, map: &Remap, buf: &[u32], at: Loc) -> Result<u64, RemapError> {
    if cmd.opaque == Some(Space::Ggtt) {
        return Err(RemapError::Unsupported {
            at,
            header: cmd.header,
        });
    }
    let mut n = 0;
    for a in cmd.addrs().iter().filter(|a| a.space == Space::Ggtt) {
        let lo = buf.get(a.dword).copied().unwrap_or(0);
        let hi = buf.get(a.dword.saturating_add(1)).copied().unwrap_or(0);
        map.moved(a, lo, hi, at)?;
        n += 1;
    }
    Ok(n)
}

/// The GGTT batch a command starts from a buffer of `level`, if any.
fn ggtt_target(cmd: &Command, level: Level, buf: &[u32]) -> Option<(u64, Level)> {
    if let Kind::MiBatchBufferStart {
        space: Space::Ggtt, ..
    } = cmd.kind
    {
        let addr = cmd.addrs().first()?.read(buf)?;
        return Some((addr, cmd.target_level(level)?));
    }
    None
}

/// Validation pass over one buffer; reports each GGTT batch target.
fn scan(
    buf: &[u32],
    level: Level,
    mode: Mode,
    map: &Remap,
    batch: Option<u64>,
    mut target: impl FnMut(u64, Level) -> Result<(), RemapError>,
) -> Result<Scan, RemapError> {
    let mut cur = Cursor::new(mode, level);
    let mut addrs = 0;
    while let Some(r) = cur.next(buf) {
        let at = Loc {
            buf: batch,
            dword: cur.position(),
        };
        let cmd = r.map_err(|err| RemapError::Command { at, err })?;
        let at = Loc {
            buf: batch,
            dword: cmd.offset,
        };
        addrs += check(&cmd, map, buf, at)?;
        if let Some((t, l)) = ggtt_target(&cmd, level, buf) {
            target(t, l)?;
        }
    }
    Ok(Scan {
        dwords: cur.position(),
        addrs,
    })
}

/// Patching pass over one buffer already validated by [`scan`].
fn patch(
    buf: &mut [u32],
    level: Level,
    mode: Mode,
    map: &Remap,
    batch: Option<u64>,
) -> Result<u64, RemapError> {
    let mut cur = Cursor::new(mode, level);
    let mut n = 0;
    loop {
        let Some(r) = cur.next(buf) else {
            return Ok(n);
        };
        let at = Loc {
            buf: batch,
            dword: cur.position(),
        };
        let cmd = r.map_err(|err| RemapError::Command { at, err })?;
        let at = Loc {
            buf: batch,
            dword: cmd.offset,
        };
        for a in cmd.addrs().iter().filter(|a| a.space == Space::Ggtt) {
            let lo = buf.get(a.dword).copied().unwrap_or(0);
            let hi = buf.get(a.dword.saturating_add(1)).copied().unwrap_or(0);
            let (new, _, _) = map.moved(a, lo, hi, at)?;
            a.write(buf, new)
                .ok_or(RemapError::AddressOverflow { at, addr: new })?;
            n += 1;
        }
    }
}

/// Rewrites every GGTT graphics address in `buf` (a buffer of `level`,
/// commands parsed under `mode`) from `map`'s source to its destination
/// partition. Batch buffers it starts are not entered (their start
/// addresses are remapped). Returns the number of addresses rewritten;
/// on error `buf` is unchanged.
pub fn remap_buffer(
    buf: &mut [u32],
    level: Level,
    mode: Mode,
    map: &Remap,
) -> Result<u64, RemapError> {
    let s = scan(buf, level, mode, map, None, |_, _| Ok(()))?;
    let n = patch(buf, level, mode, map, None)?;
    debug_assert_eq!(n, s.addrs);
    Ok(n)
}

/// Undoes [`remap_buffer`]: remaps from `map`'s destination back to its
/// source.
pub fn unmap_buffer(
    buf: &mut [u32],
    level: Level,
    mode: Mode,
    map: &Remap,
) -> Result<u64, RemapError> {
    remap_buffer(buf, level, mode, &map.inverse())
}

#[derive(Clone, Copy)]
struct Visit {
    addr: u64,
    level: Level,
    /// One past the last byte walked (0 until walked).
    end: u64,
}

struct Visited {
    v: [Visit; MAX_BATCHES],
    n: usize,
    max: usize,
}

impl Visited {
    fn add(&mut self, addr: u64, level: Level) -> Result<(), RemapError> {
        for v in self.v.iter().take(self.n) {
            if v.addr == addr {
                return if v.level == level {
                    Ok(())
                } else {
                    Err(RemapError::OverlappingBatches { addr })
                };
            }
        }
        if self.n >= self.max {
            return Err(RemapError::TooManyBatches);
        }
        let slot = self.v.get_mut(self.n).ok_or(RemapError::TooManyBatches)?;
        *slot = Visit {
            addr,
            level,
            end: 0,
        };
        self.n += 1;
        Ok(())
    }

    /// Records the extent of batch `i` and checks it against the others.
    fn walked(&mut self, i: usize, dwords: usize) -> Result<(), RemapError> {
        let Some(me) = self.v.get(i).copied() else {
            return Ok(());
        };
        let bytes = u64::try_from(dwords)
            .ok()
            .and_then(|d| d.checked_mul(4))
            .ok_or(RemapError::TooLarge)?;
        let end = me.addr.checked_add(bytes).ok_or(RemapError::TooLarge)?;
        for (j, o) in self.v.iter().take(self.n).enumerate() {
            let inside = |a: u64, start: u64, stop: u64| a >= start && a < stop;
            // Another batch starting inside this one, or this one starting
            // inside another already walked.
            if j != i && (inside(o.addr, me.addr, end) || inside(me.addr, o.addr, o.end)) {
                return Err(RemapError::OverlappingBatches {
                    addr: o.addr.max(me.addr),
                });
            }
        }
        if let Some(v) = self.v.get_mut(i) {
            v.end = end;
        }
        Ok(())
    }
}

/// [`remap_buffer`] on `root`, then on every GGTT batch buffer reachable
/// from it (through `resolver`), all validated before any is patched.
/// Returns the number of addresses rewritten in all buffers.
pub fn remap_chain<R: BatchResolver + ?Sized>(
    root: &mut [u32],
    level: Level,
    mode: Mode,
    map: &Remap,
    resolver: &mut R,
    limits: &ChainLimits,
) -> Result<u64, RemapError> {
    let mut seen = Visited {
        v: [Visit {
            addr: 0,
            level: Level::Batch,
            end: 0,
        }; MAX_BATCHES],
        n: 0,
        max: limits.max_batches.min(MAX_BATCHES),
    };
    let s = scan(root, level, mode, map, None, |a, l| seen.add(a, l))?;
    let mut dwords = s.dwords;
    let mut addrs = s.addrs;
    let mut i = 0;
    while i < seen.n {
        let Some(Visit { addr, level, .. }) = seen.v.get(i).copied() else {
            break;
        };
        let buf = resolver
            .batch(addr)
            .ok_or(RemapError::Unresolved { addr })?;
        let s = scan(buf, level, mode, map, Some(addr), |a, l| seen.add(a, l))?;
        seen.walked(i, s.dwords)?;
        dwords = dwords.saturating_add(s.dwords);
        if dwords > limits.max_dwords {
            return Err(RemapError::TooLarge);
        }
        addrs += s.addrs;
        i += 1;
    }
    if dwords > limits.max_dwords {
        return Err(RemapError::TooLarge);
    }
    let mut n = patch(root, level, mode, map, None)?;
    for v in seen.v.iter().take(seen.n) {
        let changed = RemapError::ResolverChanged { addr: v.addr };
        let buf = resolver.batch(v.addr).ok_or(changed)?;
        n += patch(buf, v.level, mode, map, Some(v.addr)).map_err(|_| changed)?;
    }
    if n != addrs {
        return Err(RemapError::ResolverChanged { addr: 0 });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::cmd::{Commands, MAX_ADDRS};
    use super::super::gtt::{Pte, PAGE_SIZE};
    use super::super::mem::GuestMem;
    use super::super::sim::exec::{tests::VecMem, LRC_MAGIC};
    use super::super::sim::remap::{remap_pending, MAX_PENDING_BATCHES};
    use super::super::sim::vgpu::{SimVgpu, TYPES};
    use super::super::testutil::Rng;
    use super::*;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    const A: u64 = 64 << 20;
    const B: u64 = 192 << 20;
    const SIZE: u64 = 64 << 20;
    const BB_END: u32 = 0x0a << 23;
    const BB_START: u32 = 0x1880_0001;

    fn map() -> Remap {
        Remap::new(
            Partition::new(A, SIZE).unwrap(),
            Partition::new(B, SIZE).unwrap(),
        )
        .unwrap()
    }

    fn lo(x: u64) -> u32 {
        x as u32
    }

    #[test]
    fn remap_sizes_and_inverse() {
        let m = map();
        assert_eq!(m.translate(A + 8), Some(B + 8));
        assert_eq!(m.inverse().translate(B + 8), Some(A + 8));
        assert_eq!(m.translate(B), None);
        assert_eq!(
            Remap::new(
                Partition::new(A, SIZE).unwrap(),
                Partition::new(B, 2 * SIZE).unwrap()
            ),
            Err(RemapError::SizeMismatch)
        );
    }

    #[test]
    fn remaps_each_address_kind_and_keeps_flags() {
        let sdi = (0x20 << 23) | (1 << 22) | 2;
        let fdw = (0x26 << 23) | (1 << 14) | 2;
        let color = (2 << 29) | (0x50 << 22) | 5;
        let mut buf = vec![
            sdi,
            lo(A + 0x100),
            0,
            7, // SDI GGTT
            (0x20 << 23) | 2,
            0x5000,
            0,
            7, // SDI PPGTT: untouched
            fdw,
            lo(A + 0x200) | 4,
            0,
            0, // FLUSH_DW GGTT, bit 2 kept
            0x7a00_0004,
            (1 << 14) | (1 << 24),
            lo(A + 0x300) | 4,
            0,
            1,
            2, // PIPE_CONTROL GGTT
            color,
            0,
            0,
            0,
            lo(A + 0x400),
            0xffff_0000,
            0, // blit, hi bits 31:16 kept
            BB_START,
            lo(A + 0x1000),
            0, // chained start: ends the batch
        ];
        let orig = buf.clone();
        let n = remap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &map()).unwrap();
        assert_eq!(n, 5);
        assert_eq!(buf[1], lo(B + 0x100));
        assert_eq!(buf[5], 0x5000);
        assert_eq!(buf[9], lo(B + 0x200) | 4);
        assert_eq!(buf[14], lo(B + 0x300) | 4);
        assert_eq!((buf[22], buf[23]), (lo(B + 0x400), 0xffff_0000));
        assert_eq!(buf[26], lo(B + 0x1000));
        unmap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &map()).unwrap();
        assert_eq!(buf, orig);
    }

    #[test]
    fn errors_leave_the_buffer_unchanged() {
        let sdi = (0x20 << 23) | (1 << 22) | 2;
        let mut buf = vec![sdi, lo(A), 0, 1, sdi, 0x1000, 0, 1, BB_END];
        let orig = buf.clone();
        assert_eq!(
            remap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &map()),
            Err(RemapError::OutsidePartition {
                at: Loc {
                    buf: None,
                    dword: 4
                },
                addr: 0x1000
            })
        );
        assert_eq!(buf, orig);
        // Unknown command after a valid address.
        buf[4] = 0xffff_ffff;
        assert!(matches!(
            remap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &map()),
            Err(RemapError::Command {
                err: CmdError::UnknownOpcode { offset: 4, .. },
                ..
            })
        ));
        assert_eq!(
            buf,
            orig[..4]
                .iter()
                .chain(&[0xffff_ffff])
                .chain(&orig[5..])
                .copied()
                .collect::<Vec<_>>()
        );
        // GGTT addresses the parser cannot locate: MI_UPDATE_GTT.
        let mut upd = vec![sdi, lo(A), 0, 1, (0x23 << 23) | 1, lo(A), 0, BB_END];
        let orig = upd.clone();
        assert_eq!(
            remap_buffer(&mut upd, Level::Batch, Mode::EXECLIST, &map()),
            Err(RemapError::Unsupported {
                at: Loc {
                    buf: None,
                    dword: 4
                },
                header: (0x23 << 23) | 1
            })
        );
        assert_eq!(upd, orig);
        // Destination beyond a field's width: 48-bit field, partition high.
        let hi = Partition::new(1 << 48, SIZE).unwrap();
        let m = Remap::new(Partition::new(A, SIZE).unwrap(), hi).unwrap();
        let mut b = vec![sdi, lo(A), 0, 1, BB_END];
        assert!(matches!(
            remap_buffer(&mut b, Level::Batch, Mode::EXECLIST, &m),
            Err(RemapError::AddressOverflow { .. })
        ));
        assert_eq!(b, [sdi, lo(A), 0, 1, BB_END]);
    }

    /// Appends one random known command with its GGTT addresses in `p`.
    fn random_cmd(rng: &mut Rng, p: Partition, out: &mut Vec<u32>) {
        let mut addr = |align: u64| (p.base + rng.below(p.size)) & !(align - 1);
        let a4 = addr(4);
        let a8 = addr(8);
        let a4k = addr(4096);
        let b4 = addr(4);
        let ggtt = 1u32 << 22;
        match rng.below(12) {
            0 => out.push(0),
            1 => out.extend([(0x20 << 23) | ggtt | 2, lo(a4) | 1, 0, 5]),
            2 => out.extend([(0x24 << 23) | ggtt | 2, 0x2358, lo(a4), 0]),
            3 => out.extend([(0x29 << 23) | ggtt | 2, 0x2358, lo(a4) | 2, 0]),
            4 => out.extend([(0x26 << 23) | (1 << 14) | 2, lo(a8) | 4, 0, 3]),
            5 => out.extend([0x7a00_0004, (1 << 14) | (1 << 24), lo(a8) | 4, 0, 1, 2]),
            6 => out.extend([(2 << 29) | (0x50 << 22) | 5, 0, 0, 0, lo(a4), 0, 9]),
            7 => out.extend([
                (2 << 29) | (0x53 << 22) | 8,
                0,
                0,
                0,
                lo(a4),
                0,
                0,
                0,
                lo(b4),
                0,
            ]),
            8 => out.extend([0x5080_0008, 0, 0, 0, lo(b4), 0, 0, 0, lo(a4), 0]),
            9 => out.extend([(0x36 << 23) | ggtt | 2, 1, lo(a8), 0]),
            10 => out.extend([(0x22 << 23) | 1, 0x2000, 5]), // LRI: no address
            _ => out.extend([BB_START | (1 << 22), lo(a4k) | 1, 0]), // second level
        }
    }

    #[test]
    fn remap_then_unmap_is_identity_on_random_buffers() {
        let mut rng = Rng::new(42);
        let pa = Partition::new(A, SIZE).unwrap();
        let m = map();
        for _ in 0..500 {
            let mut buf = Vec::new();
            let n = rng.below(40);
            for _ in 0..n {
                random_cmd(&mut rng, pa, &mut buf);
            }
            buf.push(BB_END);
            let orig = buf.clone();
            let count = remap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &m).unwrap();
            // Independent check: every GGTT address moved by B - A.
            let mut expect = 0;
            for c in Commands::new(&orig) {
                let c = c.unwrap();
                for a in c.addrs().iter().filter(|a| a.space == Space::Ggtt) {
                    let before = a.read(&orig).unwrap();
                    assert_eq!(a.read(&buf).unwrap(), before - A + B);
                    assert_eq!(buf[a.dword] & a.flags, orig[a.dword] & a.flags);
                    expect += 1;
                }
            }
            assert_eq!(count, expect);
            if count > 0 {
                assert_ne!(buf, orig);
            }
            let back = unmap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &m).unwrap();
            assert_eq!(back, count);
            assert_eq!(buf, orig);
        }
    }

    #[test]
    fn random_out_of_partition_address_is_refused_without_writes() {
        let mut rng = Rng::new(7);
        let pa = Partition::new(A, SIZE).unwrap();
        let m = map();
        for _ in 0..300 {
            let mut buf = Vec::new();
            for _ in 0..rng.below(10) {
                random_cmd(&mut rng, pa, &mut buf);
            }
            let at = buf.len();
            let bad = if rng.below(2) == 0 { A - 4 } else { A + SIZE };
            buf.extend([(0x20 << 23) | (1 << 22) | 2, lo(bad), 0, 1]);
            for _ in 0..rng.below(10) {
                random_cmd(&mut rng, pa, &mut buf);
            }
            buf.push(BB_END);
            let orig = buf.clone();
            assert_eq!(
                remap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &m),
                Err(RemapError::OutsidePartition {
                    at: Loc {
                        buf: None,
                        dword: at
                    },
                    addr: bad
                })
            );
            assert_eq!(buf, orig);
        }
    }

    #[test]
    fn three_d_addresses_follow_the_mode() {
        let mut buf = vec![0x780a_0003, 0, lo(A + 64), 0, 0x100, BB_END];
        let orig = buf.clone();
        assert_eq!(
            remap_buffer(&mut buf, Level::Batch, Mode::EXECLIST, &map()),
            Ok(0)
        );
        assert_eq!(buf, orig, "PPGTT in execlist mode");
        assert_eq!(
            remap_buffer(&mut buf, Level::Batch, Mode::GGTT, &map()),
            Ok(1)
        );
        assert_eq!(buf[2], lo(B + 64));
        // 3DSTATE_CONSTANT_VS: fine in PPGTT mode, refused in GGTT mode.
        let mut c = vec![0x7815_0009, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, BB_END];
        assert_eq!(
            remap_buffer(&mut c, Level::Batch, Mode::EXECLIST, &map()),
            Ok(0)
        );
        assert!(matches!(
            remap_buffer(&mut c, Level::Batch, Mode::GGTT, &map()),
            Err(RemapError::Unsupported { .. })
        ));
        let _ = MAX_ADDRS;
    }

    struct Batches(BTreeMap<u64, Vec<u32>>, u32);

    impl BatchResolver for Batches {
        fn batch(&mut self, addr: u64) -> Option<&mut [u32]> {
            self.1 += 1;
            self.0.get_mut(&addr).map(|v| v.as_mut_slice())
        }
    }

    #[test]
    fn chains_are_followed_validated_and_bounded() {
        let sdi = (0x20 << 23) | (1 << 22) | 2;
        let (b1, b2, b3) = (A + 0x1000, A + 0x2000, A + 0x3000);
        let mut ring = vec![0, BB_START, lo(b1), 0, 0];
        let mut r = Batches(BTreeMap::new(), 0);
        // b1: second-level call to b2, then chained to b3.
        r.0.insert(
            b1,
            vec![
                sdi,
                lo(A + 4),
                0,
                1,
                BB_START | (1 << 22),
                lo(b2),
                0,
                BB_START,
                lo(b3),
                0,
            ],
        );
        r.0.insert(b2, vec![sdi, lo(A + 8), 0, 1, BB_END]);
        // b3 loops back to b1 (chained): remapped once, not walked again.
        r.0.insert(b3, vec![sdi, lo(A + 12), 0, 1, BB_START, lo(b1), 0]);
        let (ring0, r0) = (ring.clone(), r.0.clone());
        let lim = ChainLimits::default();
        let n = remap_chain(&mut ring, Level::Ring, Mode::EXECLIST, &map(), &mut r, &lim).unwrap();
        assert_eq!(n, 1 + 3 + 1 + 2);
        assert_eq!(ring[2], lo(b1 - A + B));
        assert_eq!(r.0[&b1][1], lo(B + 4));
        assert_eq!(r.0[&b1][5], lo(b2 - A + B));
        assert_eq!(r.0[&b2][1], lo(B + 8));
        assert_eq!(r.0[&b3][5], lo(b1 - A + B));
        assert_eq!(r.1, 6, "each batch resolved once per pass");
        // The inverse chain starts from destination addresses.
        let mut inv = Batches(r.0.iter().map(|(k, v)| (k - A + B, v.clone())).collect(), 0);
        remap_chain(
            &mut ring,
            Level::Ring,
            Mode::EXECLIST,
            &map().inverse(),
            &mut inv,
            &lim,
        )
        .unwrap();
        assert_eq!(ring, ring0);
        for (k, v) in &r0 {
            assert_eq!(&inv.0[&(k - A + B)], v);
        }

        // A bad address deep in the chain: nothing written anywhere.
        let mut r = Batches(r0.clone(), 0);
        r.0.get_mut(&b2).unwrap()[1] = 0x10;
        let mut ring = ring0.clone();
        assert_eq!(
            remap_chain(&mut ring, Level::Ring, Mode::EXECLIST, &map(), &mut r, &lim),
            Err(RemapError::OutsidePartition {
                at: Loc {
                    buf: Some(b2),
                    dword: 0
                },
                addr: 0x10
            })
        );
        assert_eq!(ring, ring0);
        let mut want = r0.clone();
        want.get_mut(&b2).unwrap()[1] = 0x10;
        assert_eq!(r.0, want);

        // Missing batch, batch limit, size limit, overlap, unterminated.
        let mut r = Batches(r0.clone(), 0);
        r.0.remove(&b3);
        assert_eq!(
            remap_chain(&mut ring, Level::Ring, Mode::EXECLIST, &map(), &mut r, &lim),
            Err(RemapError::Unresolved { addr: b3 })
        );
        let mut r = Batches(r0.clone(), 0);
        let few = ChainLimits {
            max_batches: 2,
            ..lim
        };
        assert_eq!(
            remap_chain(&mut ring, Level::Ring, Mode::EXECLIST, &map(), &mut r, &few),
            Err(RemapError::TooManyBatches)
        );
        let small = ChainLimits {
            max_dwords: 12,
            ..lim
        };
        assert_eq!(
            remap_chain(
                &mut ring,
                Level::Ring,
                Mode::EXECLIST,
                &map(),
                &mut r,
                &small
            ),
            Err(RemapError::TooLarge)
        );
        let mut r = Batches(r0.clone(), 0);
        r.0.get_mut(&b3).unwrap()[5] = lo(b1 + 16); // jumps into b1
        r.0.insert(b1 + 16, vec![BB_END]);
        assert!(matches!(
            remap_chain(&mut ring, Level::Ring, Mode::EXECLIST, &map(), &mut r, &lim),
            Err(RemapError::OverlappingBatches { .. })
        ));
        let mut r = Batches(r0.clone(), 0);
        r.0.get_mut(&b2).unwrap().pop();
        assert!(matches!(
            remap_chain(&mut ring, Level::Ring, Mode::EXECLIST, &map(), &mut r, &lim),
            Err(RemapError::Command {
                err: CmdError::Truncated { .. },
                ..
            })
        ));
        assert_eq!(ring, ring0);
    }

    // The sim provider's pending contexts in guest memory.

    fn vgpu_at(base: u64) -> SimVgpu<Vec<u64>> {
        let ty = &TYPES[0];
        let p = Partition::new(base, ty.ggtt_size).unwrap();
        let mut v = SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap();
        for i in 0..256u64 {
            v.write_ggtt_entry(
                base + i * PAGE_SIZE,
                Pte::new(i * PAGE_SIZE, 0).unwrap().encode(),
            );
        }
        v
    }

    fn put(mem: &mut VecMem, gpa: u64, dws: &[u32]) {
        for (i, d) in dws.iter().enumerate() {
            mem.write(gpa + 4 * i as u64, &d.to_le_bytes()).unwrap();
        }
    }

    /// A pending context at A: ring with an SDI and a BB_START to a batch
    /// with a blit, a PIPE_CONTROL and a PPGTT store.
    fn setup(mem: &mut VecMem, v: &mut SimVgpu<Vec<u64>>) {
        let g = A as u32;
        put(mem, 0, &[LRC_MAGIC, g + 4096, 8192, 0, 32, 0, 0]);
        put(
            mem,
            4096,
            &[
                (0x20 << 23) | (1 << 22) | 2,
                g + 0x20000,
                0,
                7,
                BB_START,
                g + 0x10000,
                0,
                0,
            ],
        );
        put(
            mem,
            0x10000,
            &[
                (2 << 29) | (0x50 << 22) | 5,
                (3 << 24) | 64,
                0,
                (1 << 16) | 4,
                g + 0x30000,
                0,
                9,
                0x7a00_0004,
                (1 << 14) | (1 << 24),
                g + 0x40000 + 4, // bit 2 is not address: kept
                0,
                1,
                2,
                (0x20 << 23) | 2, // PPGTT store: left alone
                0x5000,
                0,
                3,
                BB_END,
            ],
        );
        v.submit(A | (3 << 32));
    }

    fn rd(m: &VecMem, a: usize) -> u32 {
        u32::from_le_bytes(m.bytes[a..a + 4].try_into().unwrap())
    }

    #[test]
    fn pending_contexts_move_and_inverse_restores() {
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        let original = mem.bytes.clone();
        let mut w = vgpu_at(B);
        w.submit(v.pending()[0]);
        let (pa, pb) = (v.partition(), w.partition());
        let n = remap_pending(&mut w, pa, pb, &mut mem).unwrap();
        // descriptor + ring start + SDI + BB_START + blit + pipe control
        assert_eq!(n, 6);
        assert_eq!(w.pending()[0], B | (3 << 32));
        assert_eq!(rd(&mem, 4), B as u32 + 4096);
        assert_eq!(rd(&mem, 4096 + 4), B as u32 + 0x20000);
        assert_eq!(rd(&mem, 4096 + 20), B as u32 + 0x10000);
        assert_eq!(rd(&mem, 0x10000 + 16), B as u32 + 0x30000);
        assert_eq!(rd(&mem, 0x10000 + 36), B as u32 + 0x40000 + 4);
        assert_eq!(rd(&mem, 0x10000 + 56), 0x5000, "PPGTT address untouched");
        let mut back = vgpu_at(A);
        back.submit(w.pending()[0]);
        remap_pending(&mut back, pb, pa, &mut mem).unwrap();
        assert_eq!(mem.bytes, original);
        assert_eq!(back.pending()[0], A | (3 << 32));
    }

    #[test]
    fn pending_out_of_partition_address_fails_without_writes() {
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        put(&mut mem, 0x10000 + 16, &[0x1000]);
        let before = mem.bytes.clone();
        let mut w = vgpu_at(B);
        w.submit(v.pending()[0]);
        let pb = w.partition();
        let e = remap_pending(&mut w, v.partition(), pb, &mut mem).unwrap_err();
        assert_eq!(
            e,
            RemapError::OutsidePartition {
                at: Loc {
                    buf: Some(B + 0x10000),
                    dword: 0
                },
                addr: 0x1000
            }
        );
        assert_eq!(mem.bytes, before, "nothing written on error");
        assert_eq!(w.pending()[0], A | (3 << 32), "queue untouched");
    }

    /// Remaps `v`'s pending contexts from A to B and back: the result of
    /// the first remap, and memory must be as before after the second.
    fn remap_round_trip(v: &SimVgpu<Vec<u64>>, mem: &mut VecMem) -> Result<u64, RemapError> {
        let before = mem.bytes.clone();
        let mut w = vgpu_at(B);
        for &d in v.pending() {
            w.submit(d);
        }
        let (pa, pb) = (v.partition(), w.partition());
        let r = remap_pending(&mut w, pa, pb, mem);
        if r.is_err() {
            assert_eq!(mem.bytes, before, "an error wrote memory");
            assert_eq!(w.pending(), v.pending(), "an error changed the queue");
            return r;
        }
        let mut back = vgpu_at(A);
        for &d in w.pending() {
            back.submit(d);
        }
        remap_pending(&mut back, pb, pa, mem).unwrap();
        assert_eq!(mem.bytes, before, "remap and back is not the identity");
        assert_eq!(back.pending(), v.pending());
        r
    }

    #[test]
    fn pending_shared_batches_and_loops_are_remapped_once() {
        // A second context (image at 0x8000, ring at 0x9000) calls the
        // first context's batch too.
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        let g = A as u32;
        put(
            &mut mem,
            0x8000,
            &[LRC_MAGIC, g + 0x9000, 4096, 0, 16, 0, 0],
        );
        put(&mut mem, 0x9000, &[BB_START, g + 0x10000, 0, 0]);
        v.submit(A + 0x8000);
        // descriptor + ring start + SDI + BB_START + blit + pipe control,
        // then descriptor + ring start + BB_START: the batch once.
        assert_eq!(remap_round_trip(&v, &mut mem), Ok(9));
        // The first context twice as well.
        v.submit(A | (3 << 32));
        assert_eq!(remap_round_trip(&v, &mut mem), Ok(10));

        // A batch that chains to itself (a loop): remapped once.
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        put(&mut mem, 0x10000, &[BB_START, g + 0x10000, 0]);
        assert_eq!(remap_round_trip(&v, &mut mem), Ok(5));
    }

    #[test]
    fn pending_overlaps_are_errors_without_writes() {
        let g = A as u32;
        let sdi = (0x20 << 23) | (1 << 22) | 2;
        let fresh = || {
            let mut mem = VecMem::new(1 << 20);
            let mut v = vgpu_at(A);
            setup(&mut mem, &mut v);
            (mem, v)
        };
        let overlap = |r: Result<u64, RemapError>| {
            assert!(
                matches!(r, Err(RemapError::OverlappingBatches { .. })),
                "{r:?}"
            );
        };
        // The ring also calls the batch's tail (its PIPE_CONTROL on) as a
        // batch of its own: those address dwords would be patched twice.
        let (mut mem, v) = fresh();
        put(&mut mem, 4096 + 28, &[BB_START, g + 0x10000 + 28, 0]);
        put(&mut mem, 0, &[LRC_MAGIC, g + 4096, 8192, 0, 40, 0, 0]);
        overlap(remap_round_trip(&v, &mut mem));
        // A batch chained into the middle of itself.
        let (mut mem, v) = fresh();
        put(&mut mem, 0x10000 + 68, &[BB_START, g + 0x10010, 0]);
        overlap(remap_round_trip(&v, &mut mem));
        // A batch inside the ring.
        let (mut mem, v) = fresh();
        put(&mut mem, 4096 + 20, &[g + 4096]);
        overlap(remap_round_trip(&v, &mut mem));
        // A batch over the context image.
        let (mut mem, v) = fresh();
        put(&mut mem, 4096 + 20, &[g]);
        put(&mut mem, 0, &[LRC_MAGIC, g + 4096, 8192, 0, 32, 0, 0]);
        overlap(remap_round_trip(&v, &mut mem));
        // A second context whose ring is the first one's.
        let (mut mem, mut v) = fresh();
        put(&mut mem, 0x8000, &[LRC_MAGIC, g + 4096, 8192, 0, 16, 0, 0]);
        v.submit(A + 0x8000);
        overlap(remap_round_trip(&v, &mut mem));
        // A ring walked around more than once: its last command crosses
        // the tail, so the walk goes around and meets the tail on the
        // next lap.
        let (mut mem, v) = fresh();
        put(&mut mem, 0, &[LRC_MAGIC, g + 4096, 4096, 0, 8, 0, 0]);
        put(&mut mem, 4096, &[sdi, g + 0x20000, 0, 7]);
        for off in (16..4096).step_by(4) {
            put(&mut mem, 4096 + off, &[0]);
        }
        assert!(remap_round_trip(&v, &mut mem).is_err());
        // Chains of more distinct batches than the limit.
        let (mut mem, v) = fresh();
        for i in 0..=MAX_PENDING_BATCHES {
            let at = 0x10000 + 16 * i;
            put(&mut mem, at as u64, &[BB_START, g + at + 16, 0]);
        }
        assert_eq!(
            remap_round_trip(&v, &mut mem),
            Err(RemapError::TooManyBatches)
        );
    }

    #[test]
    fn pending_garbage_is_an_error() {
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        let mut w = vgpu_at(B);
        w.submit(v.pending()[0]);
        let (pa, pb) = (v.partition(), w.partition());
        put(&mut mem, 0x10000, &[0xffff_ffff]);
        assert!(matches!(
            remap_pending(&mut w, pa, pb, &mut mem),
            Err(RemapError::Command {
                at: Loc {
                    buf: Some(_),
                    dword: 0
                },
                err: CmdError::UnknownOpcode { .. }
            })
        ));
    }
}
