// SPDX-License-Identifier: GPL-2.0

//! Command-guided narrowing of the stop-copy re-hash on GVT-g: which guest
//! frames the workloads kvmgt scanned could have written.
//!
//! gmig runs no command streamer on GVT-g, but kvmgt's command scanner
//! hook (patches/gvt 0006) shows it every command of every workload (ring,
//! batch buffers, indirect context) before the GPU runs it. Each command
//! goes through the same write-set analysis the sim's streamer applies
//! ([`command_write`]), then through this vGPU's GGTT as gmig sees it
//! ([`GgttMirror`], kept from kvmgt's GGTT write hook and the restored
//! image). On top of what the commands write, GVT-g itself writes guest
//! memory for each workload, and those frames are in the set too:
//!
//! - the context write-back: on completion, kvmgt's `update_guest_context()`
//!   copies the shadow context into the guest's context image, pages 1 to
//!   the engine's context size (Gen9 render: 22 pages,
//!   `GEN9_LR_CONTEXT_RENDER_SIZE`; Gen8 render: 20; other engines: 2) from
//!   the workload's LRCA through the GGTT ([`context_writes`], all
//!   [`CONTEXT_PAGES`] pages from page 0);
//! - the context status buffer: kvmgt's `emulate_csb_update()` writes CSB
//!   entries and the write pointer into the guest's hardware status page
//!   (the engine's HWS_PGA register, through the GGTT) at each context
//!   switch ([`status_page_writes`], from the vGPU's registers).
//!
//! Outside any workload kvmgt writes guest memory too: the answer of the
//! OpRegion's SWSCI mailbox (`intel_vgpu_emulate_opregion_request()`),
//! reported by patches/gvt 0014's hook. Those frames are not GPU-mapped,
//! so possibly not tracked: they are kept apart and handed to every
//! report as frames that may have been written (tracked from then on, a
//! re-hash candidate), whether or not the report is unbounded.
//!
//! What cannot be bounded counts as unbounded (every tracked page a
//! candidate), never as a page missed:
//!
//! - any write through a PPGTT: kvmgt's shadow PPGTT maps frames gmig does
//!   not see, and a guest PPGTT page table read at report time may already
//!   map other frames than the GPU wrote through;
//! - any write from a batch buffer in a PPGTT (`ggtt` false in the hook),
//!   even with an explicit GGTT bit: on some engines the GPU ignores the
//!   bit in a non-privileged batch and writes through the PPGTT;
//! - blits: their addresses have no space bit and GVT-g runs every guest
//!   context with a PPGTT (`prepare_mm()` refuses others), so they go
//!   through the PPGTT ([`SCAN_MODE`]);
//! - a GGTT page whose entry gmig has not seen ([`GgttMirror`] starts and,
//!   after a vGPU reset, restarts with every entry unknown), or outside the
//!   vGPU's graphics memory (GVT-g's audit then fails the workload anyway);
//! - the [`command_write`] cases (draws, unknown commands, ...).
//!
//! A GGTT address translates to the frame of the guest's entry whether or
//! not it is present: kvmgt's `intel_vgpu_gma_to_gpa()`, which its own
//! writes use, ignores the present bit (a GPU write through a non-present
//! entry lands in the host's scratch page: the frame is a superset).

use super::super::cmd::{Mode, Space};
use super::super::gtt::PAGE_SIZE;
use super::super::writeset::{
    command::{command_write, record_write, CmdWrite},
    WriteSink,
};
use super::layout::GvtLayout;

/// Pages of a guest context image kvmgt may write back, from the LRCA:
/// the largest Gen8/9 engine context (Gen9 render, 22 pages).
pub const CONTEXT_PAGES: u64 = 22;

/// Offsets in the vGPU's register image of the engines' HWS_PGA registers
/// (ring base + 0x80): render, video, video 2, video enhancement, blitter
/// (i915's `RENDER_RING_BASE`, `GEN6_BSD_RING_BASE`, `GEN8_BSD2_RING_BASE`,
/// `VEBOX_RING_BASE`, `BLT_RING_BASE`).
pub const HWS_PGA: [usize; 5] = [0x2080, 0x12080, 0x1c080, 0x1a080, 0x22080];

/// Bytes of a hardware status page kvmgt's CSB emulation writes, from its
/// start: the CSB entries (dword 0x10 on) and the write pointer (dword
/// 0x1f on Gen9, 0x2f on Gen11; the whole range is recorded).
pub const STATUS_BYTES: u64 = 0x100;

/// Most frames one write of kvmgt outside a workload may span
/// ([`GvtWrites::kvmgt_wrote`]; the OpRegion is two pages).
pub const MAX_OUTSIDE_FRAMES: u64 = 16;

/// The address spaces [`command_write`] assigns on GVT-g: everything
/// without an explicit GGTT bit goes through the context's PPGTT.
pub const SCAN_MODE: Mode = Mode::PPGTT;

/// The guest frame of a raw guest GGTT entry (bits 45:12, GVT-g's
/// `ADDR_4K_MASK`; the present bit is ignored, as kvmgt does).
pub fn entry_gfn(raw: u64) -> u64 {
    (raw >> 12) & ((1u64 << 34) - 1)
}

/// Where a GGTT address of the vGPU leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ggtt {
    /// The guest frame of the entry.
    Frame(u64),
    /// Inside the vGPU's graphics memory, but the entry is not known.
    Unknown,
    /// Outside the vGPU's graphics memory.
    Outside,
}

/// The guest's GGTT entries of one vGPU's graphics memory, as frames, in
/// caller storage (one u32 per entry, image order: aperture, then hidden).
pub struct GgttMirror<B> {
    layout: GvtLayout,
    gfns: B,
}

/// An entry not seen (or a frame beyond u32, which no guest has).
const UNKNOWN: u32 = u32::MAX;

impl<B: core::ops::DerefMut<Target = [u32]>> GgttMirror<B> {
    /// A mirror of `layout`'s entries, all unknown; `gfns` must hold
    /// [`GvtLayout::entries`] of them. `None` if it does not.
    pub fn new(layout: GvtLayout, gfns: B) -> Option<Self> {
        if (gfns.len() as u64) < layout.entries() {
            return None;
        }
        let mut m = Self { layout, gfns };
        m.forget();
        Some(m)
    }

    /// Every entry becomes unknown (a vGPU reset: kvmgt resets the GGTT
    /// without reporting each entry).
    pub fn forget(&mut self) {
        for g in &mut *self.gfns {
            *g = UNKNOWN;
        }
    }

    fn slot(gfn: u64) -> u32 {
        u32::try_from(gfn).unwrap_or(UNKNOWN)
    }

    /// The guest set global GGTT entry `index` to `raw` (kvmgt's GGTT
    /// write hook). Entries of other vGPUs are ignored.
    pub fn set(&mut self, index: u64, raw: u64) {
        let Some(i) = self.layout.image_index(index) else {
            return;
        };
        if let Some(g) = usize::try_from(i).ok().and_then(|i| self.gfns.get_mut(i)) {
            *g = Self::slot(entry_gfn(raw));
        }
    }

    /// Every entry from a restored image's GGTT section (little-endian
    /// u64s in image order, as [`super::Part::Ggtt`] is restored).
    pub fn load(&mut self, entries_le: &[u8]) {
        self.forget();
        for (i, g) in self.gfns.iter_mut().enumerate() {
            let Some(e) = entries_le
                .get(i.saturating_mul(8)..i.saturating_mul(8).saturating_add(8))
                .and_then(|e| <[u8; 8]>::try_from(e).ok())
            else {
                break;
            };
            *g = Self::slot(entry_gfn(u64::from_le_bytes(e)));
        }
    }

    /// Where graphics address `gma` leads.
    pub fn translate(&self, gma: u64) -> Ggtt {
        let Some(i) = self.layout.image_index(gma / PAGE_SIZE) else {
            return Ggtt::Outside;
        };
        match usize::try_from(i).ok().and_then(|i| self.gfns.get(i)) {
            Some(&g) if g != UNKNOWN => Ggtt::Frame(u64::from(g)),
            _ => Ggtt::Unknown,
        }
    }
}

/// Tells `sink` what the command at the start of `cmd` (kvmgt's shadow
/// copy, after the scanner hook's address rewrite) may write; `ggtt`: the
/// buffer it sits in is in the GGTT (the ring, or a privileged batch).
pub fn scan_writes<B: core::ops::DerefMut<Target = [u32]>>(
    cmd: &[u32],
    ggtt: bool,
    mirror: &GgttMirror<B>,
    sink: &mut impl WriteSink,
) {
    let w = command_write(cmd, SCAN_MODE);
    if let CmdWrite::Range { space, .. } = w {
        if space != Space::Ggtt || !ggtt {
            sink.unbounded();
            return;
        }
    }
    record_write(
        w,
        |space, gma| match (space, mirror.translate(gma)) {
            (Space::Ggtt, Ggtt::Frame(gfn)) => Some(gfn),
            _ => None,
        },
        sink,
    );
}

/// Tells `sink` the frames of `len` bytes from GGTT address `gma` that
/// kvmgt writes itself: pages outside the vGPU's graphics memory are
/// skipped (kvmgt's `intel_vgpu_gma_to_gpa()` fails there and nothing is
/// written), an unknown entry makes the sink unbounded. A page's frame
/// is written from its offset on, so `len` may reach into the next
/// frame (guest-physically contiguous, as kvmgt writes it).
fn kvmgt_writes<B: core::ops::DerefMut<Target = [u32]>>(
    gma: u64,
    len: u64,
    mirror: &GgttMirror<B>,
    sink: &mut impl WriteSink,
) {
    match mirror.translate(gma) {
        Ggtt::Outside => {}
        Ggtt::Unknown => sink.unbounded(),
        Ggtt::Frame(gfn) => {
            let gpa = gfn * PAGE_SIZE + gma % PAGE_SIZE;
            let last = gpa.saturating_add(len.max(1) - 1) / PAGE_SIZE;
            for f in gfn..=last {
                sink.may_write(f);
            }
        }
    }
}

/// Tells `sink` the frames of the context image at GGTT address `lrca`
/// that kvmgt writes back when the workload completes.
pub fn context_writes<B: core::ops::DerefMut<Target = [u32]>>(
    lrca: u64,
    mirror: &GgttMirror<B>,
    sink: &mut impl WriteSink,
) {
    let base = lrca - lrca % PAGE_SIZE;
    for p in 0..CONTEXT_PAGES {
        if let Some(gma) = base.checked_add(p * PAGE_SIZE) {
            kvmgt_writes(gma, PAGE_SIZE, mirror, sink);
        }
    }
}

/// Tells `sink` the frames of every engine's hardware status page that
/// kvmgt's CSB emulation writes, from the HWS_PGA registers `reg(offset)`
/// gives (the vGPU's register image; `None`: no such register in it, the
/// engine is skipped). `last` holds the values of the previous call and
/// gets these: a page the guest moved since is recorded too.
pub fn status_page_writes<B: core::ops::DerefMut<Target = [u32]>>(
    reg: &dyn Fn(usize) -> Option<u32>,
    last: &mut [u32; HWS_PGA.len()],
    mirror: &GgttMirror<B>,
    sink: &mut impl WriteSink,
) {
    for (off, last) in HWS_PGA.iter().zip(last.iter_mut()) {
        let Some(v) = reg(*off) else {
            continue;
        };
        if *last != v {
            kvmgt_writes(u64::from(*last), STATUS_BYTES, mirror, sink);
            *last = v;
        }
        kvmgt_writes(u64::from(v), STATUS_BYTES, mirror, sink);
    }
}

/// The native-endian dword at byte offset `off` of a register image.
pub fn reg32(image: &[u8], off: usize) -> Option<u32> {
    let b = image.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes(<[u8; 4]>::try_from(b).ok()?))
}

/// What kvmgt's hooks learn about the GPU's and kvmgt's writes to guest
/// memory between two dirty-log reports of one vGPU: the scanned commands'
/// frames, the context write-backs, and when the status pages are due.
///
/// A frame stays recorded until no workload that could write it is left:
/// kvmgt scans a workload either before it is queued (the first of its
/// engine's queue) or when it dispatches it, and a report may fall between
/// the scan and the queueing. So a report clears the record only when no
/// workload is in flight and no command was scanned since the last
/// workload was queued; until then every report replays it.
///
/// A workload in flight (queued, not completed) at a report keeps its
/// scanned frames as candidates, report after report, until it completes:
/// the GPU runs no command kvmgt has not scanned (`dispatch_workload()`
/// scans a workload that was not scanned when it was queued), so every
/// frame it can write is already recorded, and its context write-back is
/// recorded when it completes. The status pages are due at every report
/// while a workload is in flight: kvmgt's CSB emulation writes them when
/// it schedules the workload in, at no moment a hook reports.
///
/// GGTT entries that change while a scanned workload may still run, or
/// after kvmgt's own writes of the last report interval, record their old
/// and new frames: the GPU or kvmgt writes through the entry as it is
/// when it writes.
pub struct GvtWrites<R, M> {
    log: super::super::writeset::RangeLog<R>,
    /// Frames kvmgt wrote outside a workload since the last report.
    outside: super::super::writeset::RangeLog<R>,
    /// The guest's GGTT as the hooks saw it.
    mirror: GgttMirror<M>,
    in_flight: u64,
    scanned_since_queue: bool,
    status_due: bool,
    hwsp: [u32; HWS_PGA.len()],
}

impl<R, M> GvtWrites<R, M>
where
    R: core::ops::DerefMut<Target = [(u64, u64)]>,
    M: core::ops::DerefMut<Target = [u32]>,
{
    /// Nothing recorded; `ranges` bounds the record (past it, the next
    /// report is unbounded), `outside` the record of kvmgt's writes
    /// outside a workload (past it, [`GvtWrites::sync`] says frames were
    /// lost).
    pub fn new(ranges: R, outside: R, mirror: GgttMirror<M>) -> Self {
        Self {
            log: super::super::writeset::RangeLog::new(ranges),
            outside: super::super::writeset::RangeLog::new(outside),
            mirror,
            in_flight: 0,
            scanned_since_queue: false,
            status_due: false,
            hwsp: [0; HWS_PGA.len()],
        }
    }

    /// Whether the next [`GvtWrites::sync`] wants the HWS_PGA registers
    /// (a workload was queued or completed since the last one, or one is
    /// in flight).
    pub fn status_due(&self) -> bool {
        self.status_due || self.in_flight > 0
    }

    /// Workloads queued and not completed.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The scanner hook saw `cmd` (after its rewrite) in a buffer in the
    /// GGTT (`ggtt`) or a PPGTT.
    pub fn scanned(&mut self, cmd: &[u32], ggtt: bool) {
        scan_writes(cmd, ggtt, &self.mirror, &mut self.log);
        self.scanned_since_queue = true;
    }

    /// A workload was queued.
    pub fn queued(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
        self.scanned_since_queue = false;
        self.status_due = true;
    }

    /// The workload of the context at GGTT address `lrca` completed, or
    /// was dropped. Each workload [`GvtWrites::queued`] counted comes here
    /// once: with `ok` when it completed with status 0, when kvmgt wrote
    /// its context image back (through the GGTT as it is now); without,
    /// when it failed, or GVT-g dropped it unrun (an engine or vGPU
    /// reset, a failed workload before it on its engine, a failed
    /// resubmission: patches/gvt 0013, status -ECANCELED). Then no context
    /// image is written back (`complete_current_workload()` of 7.3 calls
    /// `update_guest_context()` for status 0 only), and whatever it wrote
    /// before it failed is in what its scan recorded, which stays until a
    /// report with nothing in flight hands it out. The status pages are
    /// due either way: a workload that failed after it was dispatched
    /// had its schedule-in CSB written.
    pub fn completed(&mut self, lrca: u64, ok: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.status_due = true;
        if ok {
            context_writes(lrca, &self.mirror, &mut self.log);
        }
    }

    /// kvmgt wrote `len` bytes of guest memory at `gpa` outside a
    /// workload (the OpRegion's SWSCI mailbox): the frames go to the next
    /// report, tracked or not. More than [`MAX_OUTSIDE_FRAMES`] at once
    /// (kvmgt writes a dword at a time) are not recorded, and the next
    /// [`GvtWrites::sync`] says frames were lost.
    pub fn kvmgt_wrote(&mut self, gpa: u64, len: u64) {
        let Some(end) = gpa.checked_add(len) else {
            self.outside.unbounded();
            return;
        };
        if len == 0 {
            return;
        }
        let (first, last) = (gpa / PAGE_SIZE, (end - 1) / PAGE_SIZE);
        if last - first >= MAX_OUTSIDE_FRAMES {
            self.outside.unbounded();
            return;
        }
        for gfn in first..=last {
            self.outside.record(gfn);
        }
    }

    /// Drops the record of kvmgt's writes outside workloads (dirty
    /// logging starts or stops: a write before it starts is in the VMM's
    /// first pass over guest memory).
    pub fn forget_kvmgt_writes(&mut self) {
        self.outside.clear();
    }

    /// The guest set global GGTT entry `index` to `new`.
    pub fn ggtt_write(&mut self, index: u64, new: u64) {
        if self.in_flight > 0 || self.scanned_since_queue || self.status_due {
            match self.mirror.translate(index.saturating_mul(PAGE_SIZE)) {
                Ggtt::Outside => {}
                // Translations through it were unbounded.
                Ggtt::Unknown => self.log.record(entry_gfn(new)),
                Ggtt::Frame(old) => {
                    self.log.record(old);
                    self.log.record(entry_gfn(new));
                }
            }
        }
        self.mirror.set(index, new);
    }

    /// The vGPU was reset: kvmgt reset its GGTT without reporting each
    /// entry, and its workloads are gone (those in flight never complete).
    /// The next report is unbounded.
    pub fn reset(&mut self) {
        self.mirror.forget();
        self.in_flight = 0;
        self.scanned_since_queue = false;
        self.log.unbounded();
    }

    /// A restore loaded the GGTT entries `entries_le` (image order).
    pub fn restored(&mut self, entries_le: &[u8]) {
        self.mirror.load(entries_le);
    }

    /// At a report: tells `sink` what the GPU and kvmgt may have written
    /// since the last one. When [`GvtWrites::status_due`], `regs` reads
    /// the HWS_PGA registers (see [`status_page_writes`]); without it the
    /// status pages stay due for the next report. Returns `false` if
    /// frames kvmgt wrote outside a workload could not be recorded: an
    /// unbounded report does not cover them (they may be untracked), so
    /// the dirty log is incomplete.
    pub fn sync(
        &mut self,
        regs: Option<&dyn Fn(usize) -> Option<u32>>,
        sink: &mut impl WriteSink,
    ) -> bool {
        let kept = !self.outside.is_unbounded();
        if kept {
            self.outside.replay(sink);
        }
        self.outside.clear();
        self.log.replay(sink);
        if self.in_flight == 0 && !self.scanned_since_queue {
            self.log.clear();
        }
        match (self.status_due(), regs) {
            (true, Some(reg)) => {
                status_page_writes(reg, &mut self.hwsp, &self.mirror, sink);
                self.status_due = false;
            }
            // Due and not readable: a workload in flight may have written
            // them since the last report.
            (true, None) if self.in_flight > 0 => sink.unbounded(),
            _ => {}
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;

    fn layout() -> GvtLayout {
        GvtLayout::new((32 * MIB, 32 * MIB), (512 * MIB, 64 * MIB), 4).unwrap()
    }

    /// A mirror whose first 64 aperture and hidden entries map frames
    /// 0x1000 + i and 0x2000 + i.
    fn mirror() -> GgttMirror<Vec<u32>> {
        let l = layout();
        let mut m = GgttMirror::new(l, vec![0; l.entries() as usize]).unwrap();
        for i in 0..64 {
            m.set(l.aperture.base / PAGE_SIZE + i, ((0x1000 + i) << 12) | 1);
            m.set(l.hidden.base / PAGE_SIZE + i, (0x2000 + i) << 12);
        }
        m
    }

    use crate::testutil::Sink;

    const AP: u32 = (32 * MIB) as u32;

    #[test]
    fn mirror_follows_the_guests_entries() {
        let l = layout();
        assert!(GgttMirror::new(l, vec![0u32; 3]).is_none());
        let mut m = mirror();
        assert_eq!(
            m.translate(l.aperture.base + 5 * PAGE_SIZE + 9),
            Ggtt::Frame(0x1005)
        );
        assert_eq!(
            m.translate(l.hidden.base + PAGE_SIZE),
            Ggtt::Frame(0x2001),
            "not present: still its frame"
        );
        assert_eq!(m.translate(l.aperture.base + 64 * PAGE_SIZE), Ggtt::Unknown);
        assert_eq!(m.translate(0), Ggtt::Outside);
        assert_eq!(m.translate(l.aperture.end()), Ggtt::Outside);
        // Another vGPU's entry is ignored; a frame beyond u32 is unknown.
        m.set(0, 0x42 << 12);
        m.set(l.aperture.base / PAGE_SIZE, 1 << 46);
        assert_eq!(m.translate(l.aperture.base), Ggtt::Frame(0));
        m.set(l.aperture.base / PAGE_SIZE, (1u64 << 44) | (1 << 12));
        assert_eq!(m.translate(l.aperture.base), Ggtt::Unknown);
        // A restored image's entries; a reset forgets everything.
        let mut img = vec![0u8; l.entries() as usize * 8];
        img[8..16].copy_from_slice(&(0x77u64 << 12).to_le_bytes());
        m.load(&img);
        assert_eq!(m.translate(l.aperture.base + PAGE_SIZE), Ggtt::Frame(0x77));
        assert_eq!(m.translate(l.aperture.base + 5 * PAGE_SIZE), Ggtt::Frame(0));
        m.forget();
        assert_eq!(m.translate(l.aperture.base + PAGE_SIZE), Ggtt::Unknown);
    }

    fn scan(cmd: &[u32], ggtt: bool) -> Sink {
        let mut s = Sink::default();
        scan_writes(cmd, ggtt, &mirror(), &mut s);
        s
    }

    #[test]
    fn scanned_ggtt_writes_become_frames() {
        // MI_STORE_DATA_IMM (GGTT) from the ring: its frame only.
        let s = scan(
            &[(0x20 << 23) | (1 << 22) | 2, AP + 3 * 4096 + 8, 0, 1],
            true,
        );
        assert_eq!((s.0, s.1), (vec![0x1003], false));
        // PIPE_CONTROL post-sync (GGTT), MI_FLUSH_DW post-sync (GGTT).
        let s = scan(
            &[0x7a00_0004, (1 << 24) | (1 << 14), AP + 4096, 0, 1, 2],
            true,
        );
        assert_eq!((s.0, s.1), (vec![0x1001], false));
        let s = scan(
            &[(0x26 << 23) | (1 << 14) | 2, (AP + 2 * 4096) | 4, 0, 1],
            true,
        );
        assert_eq!((s.0, s.1), (vec![0x1002], false));
        // A store data index and an LRI write no guest frame.
        let s = scan(&[(0x21 << 23) | 1, 0x40, 7], true);
        assert_eq!((s.0.len(), s.1), (0, false));
        let s = scan(&[(0x22 << 23) | 1, 0x2358, 1], true);
        assert_eq!((s.0.len(), s.1), (0, false));
    }

    #[test]
    fn what_cannot_be_bounded_is_unbounded() {
        let sdi = [(0x20 << 23) | (1 << 22) | 2, AP + 8, 0, 1];
        // From a PPGTT batch, even with the GGTT bit.
        assert!(scan(&sdi, false).1);
        // Through the PPGTT.
        assert!(scan(&[(0x20 << 23) | 2, 0x1000, 0, 1], true).1);
        // A blit (its addresses go through the context's PPGTT).
        assert!(
            scan(
                &[
                    (2 << 29) | (0x50 << 22) | 5,
                    (3 << 24) | 4096,
                    0,
                    (1 << 16) | 1,
                    AP,
                    0,
                    1
                ],
                true
            )
            .1
        );
        // An entry gmig has not seen; outside the graphics memory.
        assert!(scan(&[(0x20 << 23) | (1 << 22) | 2, AP + 100 * 4096, 0, 1], true).1);
        assert!(scan(&[(0x20 << 23) | (1 << 22) | 2, 0x1000, 0, 1], true).1);
        // A draw, an unknown command.
        assert!(scan(&[0x7b00_0005, 0, 3, 0, 1, 0, 0], true).1);
        assert!(scan(&[0xffff_ffff], true).1);
    }

    #[test]
    fn context_and_status_page_writes() {
        let l = layout();
        let m = mirror();
        let mut s = Sink::default();
        context_writes(l.aperture.base + 10 * PAGE_SIZE, &m, &mut s);
        assert_eq!(s.0, (0x100a..0x100a + CONTEXT_PAGES).collect::<Vec<_>>());
        assert!(!s.1);
        // Pages past the graphics memory are skipped (kvmgt cannot write
        // there); an unknown entry is unbounded.
        let mut s = Sink::default();
        context_writes(l.aperture.end() - 2 * PAGE_SIZE, &m, &mut s);
        assert!(s.1);
        let mut s = Sink::default();
        context_writes(l.hidden.end() - 2 * PAGE_SIZE, &m, &mut s);
        assert!(s.1 && s.0.is_empty());
        let mut m2 = mirror();
        for i in 0..2 {
            m2.set(l.hidden.end() / PAGE_SIZE - 2 + i, (0x3000 + i) << 12);
        }
        let mut s = Sink::default();
        context_writes(l.hidden.end() - 2 * PAGE_SIZE, &m2, &mut s);
        assert_eq!((s.0, s.1), (vec![0x3000, 0x3001], false));
        // HWS_PGA of the render and blitter engines; the others are 0
        // (outside the graphics memory); an image too short for an engine.
        let mut vregs = vec![0u8; 2 << 20];
        vregs[0x2080..0x2084].copy_from_slice(&(AP + 7 * 4096).to_ne_bytes());
        vregs[0x22080..0x22084].copy_from_slice(&(AP + 8 * 4096 + 0xf80).to_ne_bytes());
        let mut last = [0; HWS_PGA.len()];
        let mut s = Sink::default();
        status_page_writes(&|o| reg32(&vregs, o), &mut last, &m, &mut s);
        assert_eq!((s.0, s.1), (vec![0x1007, 0x1008, 0x1009], false));
        let mut s = Sink::default();
        status_page_writes(&|o| reg32(&vregs[..0x10000], o), &mut last, &m, &mut s);
        assert_eq!((s.0, s.1), (vec![0x1007], false));
        // The guest moved the render status page: old and new recorded.
        vregs[0x2080..0x2084].copy_from_slice(&(AP + 9 * 4096).to_ne_bytes());
        let mut s = Sink::default();
        status_page_writes(&|o| reg32(&vregs[..0x10000], o), &mut last, &m, &mut s);
        assert_eq!((s.0, s.1), (vec![0x1007, 0x1009], false));
        vregs[0x2080..0x2084].copy_from_slice(&(AP + 90 * 4096).to_ne_bytes());
        let mut s = Sink::default();
        status_page_writes(&|o| reg32(&vregs, o), &mut last, &m, &mut s);
        assert!(s.1, "a status page behind an unknown entry");
    }
}

#[cfg(test)]
mod writes_tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;
    const AP: u64 = 32 * MIB;

    fn writes() -> GvtWrites<Vec<(u64, u64)>, Vec<u32>> {
        let l = GvtLayout::new((AP, 32 * MIB), (512 * MIB, 64 * MIB), 4).unwrap();
        let m = GgttMirror::new(l, vec![0; l.entries() as usize]).unwrap();
        let mut w = GvtWrites::new(vec![(0, 0); 64], vec![(0, 0); 4], m);
        for i in 0..64 {
            w.ggtt_write(AP / PAGE_SIZE + i, (0x1000 + i) << 12);
        }
        w
    }

    use crate::testutil::Sink;

    fn sdi(page: u64) -> [u32; 4] {
        [
            (0x20 << 23) | (1 << 22) | 2,
            (AP + page * PAGE_SIZE) as u32,
            0,
            1,
        ]
    }

    fn sync(w: &mut GvtWrites<Vec<(u64, u64)>, Vec<u32>>) -> (Vec<u64>, bool, bool) {
        let mut s = Sink::default();
        let due = w.status_due();
        w.sync(Some(&|_| None), &mut s);
        s.0.sort_unstable();
        s.0.dedup();
        (s.0, s.1, due)
    }

    const LRCA: u64 = AP + 40 * PAGE_SIZE;

    fn ctx() -> Vec<u64> {
        (0x1028..0x1028 + CONTEXT_PAGES).collect()
    }

    #[test]
    fn a_workload_writes_its_scanned_frames_and_context() {
        let mut w = writes();
        assert_eq!(sync(&mut w), (vec![], false, false), "idle: nothing");
        w.scanned(&sdi(3), true);
        w.queued();
        assert_eq!(
            sync(&mut w),
            (vec![0x1003], false, true),
            "in flight: its scan"
        );
        assert_eq!(sync(&mut w), (vec![0x1003], false, true), "still in flight");
        w.completed(LRCA, true);
        let mut want = vec![0x1003];
        want.extend(ctx());
        assert_eq!(sync(&mut w), (want, false, true));
        assert_eq!(sync(&mut w), (vec![], false, false), "cleared once done");
    }

    /// Random interleavings of kvmgt's hooks (GGTT changes, scans, queueing
    /// and completion of workloads, reports) around a model GPU and kvmgt
    /// that write through the GGTT as it is when they write: every frame
    /// written is in the first report after the write, or that report is
    /// unbounded.
    #[test]
    fn every_write_is_in_the_next_report() {
        use std::collections::{BTreeSet, VecDeque};
        let mut rng = crate::testutil::Rng::new(17);
        let mut bounded = 0;
        for _ in 0..300 {
            let mut w = writes();
            let mut ggtt: Vec<u64> = (0..64).map(|i| 0x1000 + i).collect();
            let hws = (AP + 63 * PAGE_SIZE) as u32;
            let mut scanned: Vec<u64> = Vec::new();
            let mut queue: VecDeque<Vec<u64>> = VecDeque::new();
            let mut written = BTreeSet::new();
            // Frames kvmgt wrote outside workloads (not GPU-mapped: an
            // unbounded report does not cover them).
            let mut outside = BTreeSet::new();
            for _ in 0..60 {
                match rng.below(10) {
                    0 => {
                        let e = rng.below(64);
                        ggtt[e as usize] = 0x2000 + rng.below(64);
                        w.ggtt_write(AP / PAGE_SIZE + e, ggtt[e as usize] << 12);
                    }
                    1 => {
                        let e = rng.below(40);
                        w.scanned(&sdi(e), true);
                        scanned.push(e);
                    }
                    2 if !scanned.is_empty() => {
                        w.queued();
                        queue.push_back(core::mem::take(&mut scanned));
                    }
                    3 => {
                        if let Some(stores) = queue.pop_front() {
                            // The GPU runs it, kvmgt writes the context
                            // image back and the CSB, then completes it.
                            for e in stores {
                                written.insert(ggtt[e as usize]);
                            }
                            written.insert(ggtt[41]);
                            written.insert(ggtt[63]);
                            w.completed(LRCA, true);
                        }
                    }
                    7 => {
                        // The head workload runs part-way: kvmgt schedules
                        // it in (the CSB), the GPU does some of its stores;
                        // it stays in flight across reports.
                        if let Some(stores) = queue.front() {
                            for &e in stores {
                                if rng.below(2) == 0 {
                                    written.insert(ggtt[e as usize]);
                                }
                            }
                            written.insert(ggtt[63]);
                        }
                    }
                    4 => {
                        // An engine reset: GVT-g drops the queue unrun.
                        for _ in queue.drain(..) {
                            w.completed(LRCA, false);
                        }
                    }
                    5 => {
                        if let Some(stores) = queue.pop_front() {
                            // It fails part-way: some of its stores and
                            // the schedule-in CSB, no context write-back.
                            for e in stores {
                                if rng.below(2) == 0 {
                                    written.insert(ggtt[e as usize]);
                                }
                            }
                            written.insert(ggtt[63]);
                            w.completed(LRCA, false);
                        }
                    }
                    6 => {
                        // The OpRegion's SWSCI answer, SCIC and PARM (two
                        // frames: the record holds 4 ranges).
                        let gfn = 0x9000 + rng.below(2);
                        w.kvmgt_wrote(gfn * PAGE_SIZE + 0x200, 4);
                        w.kvmgt_wrote(gfn * PAGE_SIZE + 0x204, 4);
                        outside.insert(gfn);
                    }
                    _ => {
                        let mut s = Sink::default();
                        let reg = |o: usize| (o == 0x2080).then_some(hws);
                        assert!(w.sync(Some(&reg), &mut s));
                        let got: BTreeSet<u64> = s.0.into_iter().collect();
                        assert!(outside.is_subset(&got), "{outside:x?} not in {got:x?}");
                        if !s.1 {
                            bounded += 1;
                            assert!(written.is_subset(&got), "{written:x?} not in {got:x?}");
                        }
                        written.clear();
                        outside.clear();
                    }
                }
            }
        }
        assert!(bounded > 1000, "only {bounded} bounded reports");
    }

    /// Workloads GVT-g drops unrun (an engine reset): once the last one
    /// is reported, the next report is bounded again and names what their
    /// scans recorded, without their context images (kvmgt writes none
    /// back; this one's LRCA reaches entries gmig has not seen, which
    /// would make it unbounded).
    #[test]
    fn dropped_workloads_leave_narrowing_on() {
        let mut w = writes();
        let lrca = AP + 50 * PAGE_SIZE;
        w.scanned(&sdi(3), true);
        w.queued();
        w.queued();
        w.scanned(&sdi(4), true);
        w.queued();
        assert_eq!(
            sync(&mut w),
            (vec![0x1003, 0x1004], false, true),
            "in flight"
        );
        for _ in 0..3 {
            w.completed(lrca, false);
        }
        assert_eq!(w.in_flight(), 0);
        assert_eq!(sync(&mut w), (vec![0x1003, 0x1004], false, true));
        w.scanned(&sdi(5), true);
        w.queued();
        w.completed(LRCA, true);
        let mut want = vec![0x1005];
        want.extend(ctx());
        assert_eq!(sync(&mut w), (want, false, true));
        // A failed workload: what it may have written stays recorded.
        w.scanned(&sdi(6), true);
        w.queued();
        assert_eq!(sync(&mut w), (vec![0x1006], false, true), "in flight");
        w.completed(lrca, false);
        assert_eq!(sync(&mut w), (vec![0x1006], false, true));
    }

    /// kvmgt's writes outside workloads reach the next report even when
    /// it is unbounded (their frames need not be tracked), and only it.
    #[test]
    fn kvmgt_writes_outside_workloads_reach_every_report() {
        let mut w = writes();
        w.kvmgt_wrote(0x9000 * PAGE_SIZE + 0x200, 4);
        w.kvmgt_wrote(0x9000 * PAGE_SIZE + 0x204, 4);
        assert_eq!(sync(&mut w), (vec![0x9000], false, false));
        assert_eq!(sync(&mut w), (vec![], false, false), "once");
        w.queued();
        w.kvmgt_wrote(0x9001 * PAGE_SIZE - 2, 4);
        assert_eq!(sync(&mut w), (vec![0x9000, 0x9001], false, true));
        w.completed(LRCA, true);
        sync(&mut w);
        // Nothing, and what logging did not see, is nothing.
        w.kvmgt_wrote(0x42 * PAGE_SIZE, 0);
        w.kvmgt_wrote(0x43 * PAGE_SIZE, 4);
        w.forget_kvmgt_writes();
        assert_eq!(sync(&mut w), (vec![], false, false));
        // More ranges than the record holds, a write beyond
        // MAX_OUTSIDE_FRAMES or past the end of the address space: lost.
        type W = GvtWrites<Vec<(u64, u64)>, Vec<u32>>;
        let lost = |f: &dyn Fn(&mut W)| {
            let mut w = writes();
            f(&mut w);
            let mut s = Sink::default();
            assert!(!w.sync(None, &mut s));
            assert!(w.sync(None, &mut s), "said once");
        };
        lost(&|w| {
            for i in 0..5 {
                w.kvmgt_wrote(0x9000 * PAGE_SIZE + 2 * i * PAGE_SIZE, 4);
            }
        });
        lost(&|w| w.kvmgt_wrote(0, MAX_OUTSIDE_FRAMES * PAGE_SIZE + 1));
        lost(&|w| w.kvmgt_wrote(u64::MAX - 1, 4));
        let mut w = writes();
        w.kvmgt_wrote(0, MAX_OUTSIDE_FRAMES * PAGE_SIZE);
        let (f, _, _) = sync(&mut w);
        assert_eq!(f, (0..MAX_OUTSIDE_FRAMES).collect::<Vec<_>>());
    }

    #[test]
    fn status_pages_are_recorded_when_due() {
        let mut w = writes();
        let rcs = |o: usize| (o == 0x2080).then_some((AP + 63 * PAGE_SIZE) as u32);
        let mut s = Sink::default();
        w.sync(Some(&rcs), &mut s);
        assert!(s.0.is_empty(), "no workload: not due");
        w.queued();
        w.completed(LRCA, true);
        assert!(w.status_due());
        let mut s = Sink::default();
        w.sync(None, &mut s);
        assert!(
            !s.0.contains(&0x103f) && w.status_due(),
            "no registers: still due"
        );
        let mut s = Sink::default();
        w.sync(Some(&rcs), &mut s);
        assert!(s.0.contains(&0x103f) && !w.status_due());
    }

    #[test]
    fn a_report_between_scan_and_queue_keeps_the_frames() {
        let mut w = writes();
        w.scanned(&sdi(5), true);
        assert_eq!(sync(&mut w).0, vec![0x1005]);
        w.queued();
        w.completed(LRCA, true);
        let (f, unbounded, _) = sync(&mut w);
        assert!(!unbounded && f.contains(&0x1005), "{f:x?}");
    }

    #[test]
    fn a_ggtt_change_under_a_scanned_workload_records_both_frames() {
        let mut w = writes();
        w.scanned(&sdi(6), true);
        w.ggtt_write(AP / PAGE_SIZE + 6, 0x5000 << 12);
        w.queued();
        w.completed(LRCA, true);
        let (f, _, _) = sync(&mut w);
        assert!(f.contains(&0x1006) && f.contains(&0x5000), "{f:x?}");
        // After kvmgt's own writes (a status page behind entry 7, say):
        // the frame it wrote through is recorded.
        w.queued();
        w.completed(LRCA, true);
        sync(&mut w);
        w.queued();
        w.completed(LRCA, true);
        w.ggtt_write(AP / PAGE_SIZE + 7, 0x7000 << 12);
        let (f, _, due) = sync(&mut w);
        assert!(due && f.contains(&0x1007) && f.contains(&0x7000), "{f:x?}");
        // Idle: a change records nothing (later scans see the new entry).
        w.ggtt_write(AP / PAGE_SIZE + 6, 0x6000 << 12);
        assert_eq!(sync(&mut w).0, vec![]);
    }

    #[test]
    fn unbounded_commands_overflow_and_resets_fall_back() {
        let mut w = writes();
        w.scanned(&[0x7b00_0005, 0, 3, 0, 1, 0, 0], true);
        w.queued();
        w.completed(LRCA, true);
        assert!(sync(&mut w).1, "a draw");
        let mut w = writes();
        for p in 0..64 {
            w.scanned(&sdi(63 - p), true);
        }
        w.queued();
        w.completed(LRCA, true);
        assert!(sync(&mut w).1, "more ranges than the log holds");
        let mut w = writes();
        w.queued();
        w.reset();
        let (_, unbounded, _) = sync(&mut w);
        assert!(unbounded);
        w.scanned(&sdi(3), true);
        w.queued();
        w.completed(LRCA, true);
        assert!(sync(&mut w).1, "entries unknown after a reset");
        w.restored(&vec![0u8; 8 * 64]);
        w.scanned(&sdi(3), true);
        w.queued();
        w.completed(LRCA, true);
        let (f, unbounded, _) = sync(&mut w);
        assert_eq!(
            (f, unbounded),
            (vec![0], false),
            "restored entries map frame 0"
        );
    }
}
