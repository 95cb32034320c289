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
use super::super::mem::GuestMem;
use super::super::writeset::{
    command::{command_write, record_write, unbounded_space, writes_through_state, CmdWrite},
    scan::{
        context_slot, CtxSlot, Format, NoContexts, Ppgtt, StateVerdict, Walk, Written,
        MAX_RANGE_PAGES, MAX_RECORD_PAGES, MAX_STATE_READS,
    },
    state::{GpuRead, PipeState},
    surface::Range,
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
/// workload was queued; until then every report replays it. With a
/// carry-over record ([`GvtWrites::with_carry`]) a report hands what it
/// recorded to the carry-over instead, with, per engine, the completions
/// that engine must reach before every workload in flight at the report
/// has completed (GVT-g completes and drops an engine's workloads in queue
/// order); the first report at which all of them are reached replays it
/// one last time and drops it. A guest that keeps one workload in flight
/// at all times then has the frames of the last few workloads as
/// candidates, not every frame since its last idle moment.
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
pub struct GvtWrites<R, M, C = NoContexts> {
    log: super::super::writeset::RangeLog<R>,
    /// Frames kvmgt wrote outside a workload since the last report.
    outside: super::super::writeset::RangeLog<R>,
    /// The guest's GGTT as the hooks saw it.
    mirror: GgttMirror<M>,
    in_flight: u64,
    scanned_since_queue: bool,
    status_due: bool,
    hwsp: [u32; HWS_PGA.len()],
    /// The pipeline state of the contexts whose workloads were scanned.
    contexts: C,
    /// The workload being scanned ([`GvtWrites::scan_workload`]).
    scan: Option<Scan>,
    /// A guest command enabled a binding table pool, or the contexts'
    /// history is not known (a restore): a context first seen then does
    /// not start from i915's golden state.
    pool_seen: bool,
    /// A batch start into a PPGTT was scanned in a buffer in the GGTT and
    /// no command of its batch has been seen since: kvmgt may not scan it
    /// ([`GvtWrites::scanned`]).
    batch_pending: bool,
    /// Per engine id: workloads queued and not completed, and completions
    /// so far.
    engine_in_flight: [u32; ENGINES],
    engine_done: [u64; ENGINES],
    /// The engine of the last workload scanned (`None`: not known).
    scan_engine: Option<usize>,
    /// The record of earlier reports still due, if the caller gave it
    /// storage: dropped once every engine's completions reach `carry_until`,
    /// or (`carry_idle`, some engine not known) once nothing is in flight.
    carry: Option<super::super::writeset::RangeLog<R>>,
    carry_until: [u64; ENGINES],
    carry_idle: bool,
    /// Reports the record or the carry-over made unbounded for want of
    /// room.
    overflows: u64,
}

/// Engine ids whose workloads the carry-over follows (i915's `enum
/// intel_engine_id` has fewer); a workload of another id makes the
/// carry-over wait for a report with nothing in flight.
pub const ENGINES: usize = 32;

/// The workload kvmgt is scanning, and what its scan recorded so far.
struct Scan {
    /// Its PPGTT (4-level), if it has one.
    ppgtt: Option<Ppgtt>,
    /// Its context's slot in [`GvtWrites::contexts`].
    slot: Option<usize>,
    /// What its commands wrote so far, in the PPGTT.
    written: Written,
    /// Pages still to record, and state reads left.
    pages_left: u64,
    state_reads: u32,
    /// Every frame its PPGTT maps was recorded ([`Scan::through_ppgtt`]).
    all_mapped: bool,
}

/// The context's memory as the state tracker reads it at scan time
/// (through its PPGTT), within [`MAX_STATE_READS`].
struct ScanReader<'a, G> {
    ppgtt: &'a mut Ppgtt,
    mem: &'a mut G,
    left: &'a mut u32,
}

impl<G: GuestMem> GpuRead for ScanReader<'_, G> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        if *self.left == 0 {
            return false;
        }
        *self.left -= 1;
        self.ppgtt.read(self.mem, addr, buf).is_ok()
    }
}

impl<R, M> GvtWrites<R, M>
where
    R: core::ops::DerefMut<Target = [(u64, u64)]>,
    M: core::ops::DerefMut<Target = [u32]>,
{
    /// Nothing recorded; `ranges` bounds the record (past it, the next
    /// report is unbounded), `outside` the record of kvmgt's writes
    /// outside a workload (past it, [`GvtWrites::sync`] says frames were
    /// lost). No context state is kept: draws are unbounded until
    /// [`GvtWrites::with_contexts`] gives storage for it.
    pub fn new(ranges: R, outside: R, mirror: GgttMirror<M>) -> Self {
        Self {
            log: super::super::writeset::RangeLog::new(ranges),
            outside: super::super::writeset::RangeLog::new(outside),
            mirror,
            in_flight: 0,
            scanned_since_queue: false,
            status_due: false,
            hwsp: [0; HWS_PGA.len()],
            contexts: NoContexts,
            scan: None,
            pool_seen: false,
            batch_pending: false,
            engine_in_flight: [0; ENGINES],
            engine_done: [0; ENGINES],
            scan_engine: None,
            carry: None,
            carry_until: [0; ENGINES],
            carry_idle: false,
            overflows: 0,
        }
    }

    /// The same, handing each report's record to a carry-over in `carry`
    /// (its capacity in ranges) that lives only until the workloads in
    /// flight at the report have completed (see [`GvtWrites`]).
    pub fn with_carry(mut self, carry: R) -> Self {
        self.carry = Some(super::super::writeset::RangeLog::new(carry));
        self
    }
}

impl<R, M, C> GvtWrites<R, M, C>
where
    R: core::ops::DerefMut<Target = [(u64, u64)]>,
    M: core::ops::DerefMut<Target = [u32]>,
    C: core::ops::DerefMut<Target = [CtxSlot]>,
{
    /// The same, keeping the pipeline state of as many contexts as
    /// `contexts` holds slots, which must be free (e.g.
    /// [`super::super::writeset::scan::CONTEXT_SLOTS`] copies of
    /// [`CtxSlot::EMPTY`]; they are not cleared here, since a slot is
    /// 3 KiB and a kernel stack 16).
    pub fn with_contexts<D: core::ops::DerefMut<Target = [CtxSlot]>>(
        self,
        contexts: D,
    ) -> GvtWrites<R, M, D> {
        GvtWrites {
            log: self.log,
            outside: self.outside,
            mirror: self.mirror,
            in_flight: self.in_flight,
            scanned_since_queue: self.scanned_since_queue,
            status_due: self.status_due,
            hwsp: self.hwsp,
            contexts,
            scan: None,
            pool_seen: self.pool_seen,
            batch_pending: self.batch_pending,
            engine_in_flight: self.engine_in_flight,
            engine_done: self.engine_done,
            scan_engine: self.scan_engine,
            carry: self.carry,
            carry_until: self.carry_until,
            carry_idle: self.carry_idle,
            overflows: self.overflows,
        }
    }

    /// Whether the next [`GvtWrites::sync`] wants the HWS_PGA registers
    /// (a workload was queued or completed since the last one, or one is
    /// in flight).
    pub fn status_due(&self) -> bool {
        self.status_due || self.in_flight > 0
    }

    /// Reports so far that the record or the carry-over made unbounded
    /// for want of room.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Workloads queued and not completed.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// kvmgt begins to scan a workload of `engine`, of the context whose image is at
    /// GGTT address `lrca`, with a 4-level PPGTT whose PML4 is at guest
    /// physical `pml4` (`None`: no PPGTT, or a 3-level one, which is not
    /// walked). The commands [`GvtWrites::scanned`] sees next are its.
    pub fn scan_workload(&mut self, engine: u64, lrca: u64, pml4: Option<u64>) {
        self.batch_ended_scan();
        self.scan_engine = usize::try_from(engine).ok().filter(|&e| e < ENGINES);
        let ppgtt = pml4
            .filter(|&p| p != 0)
            .map(|p| Ppgtt::new(p, Format::Gen8));
        let golden = !self.pool_seen;
        let slot = ppgtt.and_then(|p| {
            context_slot(&mut self.contexts, lrca, p.pml4(), || {
                if golden {
                    PipeState::fresh()
                } else {
                    PipeState::new()
                }
            })
        });
        self.scan = Some(Scan {
            ppgtt,
            slot,
            written: Written::new(),
            pages_left: MAX_RECORD_PAGES,
            state_reads: MAX_STATE_READS,
            all_mapped: false,
        });
        self.scanned_since_queue = true;
    }

    /// The scanner hook saw `cmd` (after its rewrite) in a buffer in the
    /// GGTT (`ggtt`) or a PPGTT; `mem` is the guest's memory, where the
    /// workload's page tables and pipeline state are read, now.
    pub fn scanned(&mut self, cmd: &[u32], ggtt: bool, mem: &mut impl GuestMem) {
        self.scanned_since_queue = true;
        // GVT-g scans a batch buffer in a PPGTT only on the engines set in
        // the vGPU's `scan_nonprivbb` (none by default); otherwise it
        // emulates the batch's end (`batch_buffer_needs_scan()`) and the
        // hook sees none of its commands. Right after a scanned batch
        // start, a command in a PPGTT buffer is its batch's; one in the
        // GGTT is the ring's again: the batch was not scanned.
        if core::mem::take(&mut self.batch_pending) && ggtt {
            self.batch_unscanned(mem);
        }
        if ggtt && is_ppgtt_batch_start(cmd) {
            self.batch_pending = true;
        }
        // 3DSTATE_BINDING_TABLE_POOL_ALLOC with its enable bit (dw1 bit
        // 11): from now on a context first seen may have one too.
        if cmd.first().is_some_and(|d| d >> 16 == 0x7919)
            && cmd.get(1).is_some_and(|d| d & (1 << 11) != 0)
        {
            self.pool_seen = true;
        }
        let Some(scan) = self.scan.as_mut() else {
            return scan_writes(cmd, ggtt, &self.mirror, &mut self.log);
        };
        let Some(mut ppgtt) = scan.ppgtt else {
            return scan_writes(cmd, ggtt, &self.mirror, &mut self.log);
        };
        let draw = cmd.first().is_some_and(|&d| writes_through_state(d));
        if draw && scan.all_mapped {
            // Its state still follows (a draw changes none).
            scan.ppgtt = Some(ppgtt);
            return;
        }
        if let Some(slot) = scan.slot.and_then(|i| self.contexts.get_mut(i)) {
            let mut v = StateVerdict::new(&scan.written);
            let mut reader = ScanReader {
                ppgtt: &mut ppgtt,
                mem,
                left: &mut scan.state_reads,
            };
            if slot.state.command(cmd, &mut reader, &mut v) {
                let (ranges, n, unbounded) = v.into_parts();
                if unbounded {
                    scan.through_ppgtt(&mut ppgtt, mem, &mut self.log);
                }
                for r in ranges.iter().take(n) {
                    scan.ppgtt_write(&mut ppgtt, *r, mem, &mut self.log);
                }
                scan.ppgtt = Some(ppgtt);
                return;
            }
        }
        match command_write(cmd, SCAN_MODE) {
            CmdWrite::Range {
                space: Space::Ppgtt,
                addr,
                len,
            } => {
                let r = span(addr, len);
                scan.ppgtt_write(&mut ppgtt, r, mem, &mut self.log);
            }
            w @ CmdWrite::Range {
                space: Space::Ggtt,
                addr,
                len,
            } => {
                // A state read later in the workload may see it through
                // another graphics address: refuse those bounds.
                scan.written.other = true;
                record_write(
                    w,
                    |_, gma| match self.mirror.translate(gma) {
                        Ggtt::Frame(gfn) => Some(gfn),
                        _ => None,
                    },
                    &mut self.log,
                );
                if !ggtt {
                    // Some engines ignore the GGTT bit in a batch buffer
                    // in a PPGTT: the write may go through the PPGTT.
                    let r = span(addr, len);
                    scan.ppgtt_write(&mut ppgtt, r, mem, &mut self.log);
                }
            }
            CmdWrite::Unbounded if unbounded_space(cmd, SCAN_MODE) == Some(Space::Ppgtt) => {
                scan.through_ppgtt(&mut ppgtt, mem, &mut self.log)
            }
            w => record_write(w, |_, _| None, &mut self.log),
        }
        scan.ppgtt = Some(ppgtt);
    }

    /// A batch buffer in the PPGTT that kvmgt did not scan writes
    /// through the workload's PPGTT only (a non-privileged batch cannot
    /// use the GGTT): every frame the PPGTT maps, read with `mem`; without
    /// a PPGTT known, unbounded ([`GvtWrites::batch_ended_scan`] covers a
    /// batch start that ended a scan).
    fn batch_unscanned(&mut self, mem: &mut impl GuestMem) {
        match self.scan.as_mut() {
            Some(scan) => match scan.ppgtt {
                Some(mut p) => {
                    scan.through_ppgtt(&mut p, mem, &mut self.log);
                    scan.ppgtt = Some(p);
                }
                None => self.log.unbounded(),
            },
            None => self.log.unbounded(),
        }
    }

    /// A batch start ended a scan, or a report comes between it and the
    /// next command: whether kvmgt scans its batch is not known.
    fn batch_ended_scan(&mut self) {
        if core::mem::take(&mut self.batch_pending) {
            self.log.unbounded();
        }
    }

    /// The guest changed an entry of a PPGTT page table kvmgt shadows, at
    /// `level` (1: a page table), to `val`: the GPU may write through the
    /// new entry from now on. While work kvmgt scanned may still run, the
    /// frames of a new page table entry become candidates (the 64 KiB
    /// block around it: a page table of 64 KiB pages uses every 16th
    /// entry), and a new upper-level entry makes the record unbounded
    /// (it may bring a whole subtree). An entry the scan read before is
    /// in the record already (its old frame); the page tables a later
    /// scan walks hold the new one.
    pub fn ppgtt_entry(&mut self, level: u32, val: u64) {
        // The translations of the workload being scanned may have been
        // read before the change.
        if let Some(p) = self.scan.as_mut().and_then(|s| s.ppgtt.as_mut()) {
            p.invalidate();
        }
        if !(self.in_flight > 0 || self.scanned_since_queue || self.status_due) {
            return;
        }
        if level != 1 {
            self.log.unbounded();
            return;
        }
        if val & 1 == 0 {
            return;
        }
        let block = entry_gfn(val) & !15;
        for gfn in block..block + 16 {
            self.log.record(gfn);
        }
    }

    /// kvmgt destroyed its shadow of the PPGTT whose root is at `root`:
    /// a context of that root seen again may be a new one.
    pub fn ppgtt_destroyed(&mut self, root: u64) {
        for s in self.contexts.iter_mut() {
            if s.key().is_some_and(|(_, pml4)| pml4 == root) {
                s.clear();
            }
        }
    }

    /// Forgets the contexts whose image may lie in the GGTT page of
    /// `gma` (its entry changed: a new context may be bound there), or
    /// whose image is at `lrca` (`gma` None).
    fn forget_contexts(&mut self, gma: Option<u64>, lrca: u64) {
        for s in self.contexts.iter_mut() {
            let hit = s.key().is_some_and(|(l, _)| match gma {
                Some(g) => {
                    let base = l - l % PAGE_SIZE;
                    g >= base && g - base < CONTEXT_PAGES * PAGE_SIZE
                }
                None => l == lrca,
            });
            if hit {
                s.clear();
            }
        }
    }

    /// A workload was queued on `engine`.
    pub fn queued(&mut self, engine: u64) {
        self.in_flight = self.in_flight.saturating_add(1);
        match self.engine_slot(engine) {
            Some(e) => *e = e.saturating_add(1),
            None => self.carry_idle = true,
        }
        self.scanned_since_queue = false;
        self.status_due = true;
    }

    /// The workload of `engine` of the context at GGTT address `lrca` completed, or
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
    pub fn completed(&mut self, engine: u64, lrca: u64, ok: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(e) = usize::try_from(engine).ok().filter(|&e| e < ENGINES) {
            if let Some(n) = self.engine_in_flight.get_mut(e) {
                *n = n.saturating_sub(1);
            }
            if let Some(d) = self.engine_done.get_mut(e) {
                *d += 1;
            }
        }
        self.status_due = true;
        if ok {
            context_writes(lrca, &self.mirror, &mut self.log);
        } else {
            // Its scan changed the context's state as if it ran; it did
            // not, or not all of it.
            self.forget_contexts(None, lrca);
        }
    }

    /// The in-flight count of engine id `engine`, if the carry-over
    /// follows that id.
    fn engine_slot(&mut self, engine: u64) -> Option<&mut u32> {
        usize::try_from(engine)
            .ok()
            .and_then(|e| self.engine_in_flight.get_mut(e))
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
        self.forget_contexts(Some(index.saturating_mul(PAGE_SIZE)), 0);
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
        self.engine_in_flight = [0; ENGINES];
        if let Some(c) = self.carry.as_mut() {
            c.clear();
        }
        self.carry_until = [0; ENGINES];
        self.carry_idle = false;
        super::super::writeset::scan::clear_contexts(&mut self.contexts);
        self.scan = None;
    }

    /// A restore loaded the GGTT entries `entries_le` (image order). The
    /// guest's contexts ran on the source: their state is not known here,
    /// nor whether one enabled a binding table pool.
    pub fn restored(&mut self, entries_le: &[u8]) {
        self.mirror.load(entries_le);
        super::super::writeset::scan::clear_contexts(&mut self.contexts);
        self.scan = None;
        self.pool_seen = true;
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
        self.batch_ended_scan();
        let kept = !self.outside.is_unbounded();
        if kept {
            self.outside.replay(sink);
        }
        self.outside.clear();
        self.log.replay(sink);
        if self.log.overflowed() || self.carry.as_ref().is_some_and(|c| c.overflowed()) {
            self.overflows += 1;
        }
        let idle = self.in_flight == 0 && !self.scanned_since_queue;
        if let Some(carry) = self.carry.as_mut() {
            carry.replay(sink);
            // Every workload in flight at the reports it holds has
            // completed since, and this report named its frames once more.
            let done = self
                .engine_done
                .iter()
                .zip(&self.carry_until)
                .all(|(d, u)| d >= u);
            if idle || (done && !self.carry_idle) {
                carry.clear();
                self.carry_until = [0; ENGINES];
                self.carry_idle = false;
            }
            if !idle {
                // This report's record joins it, until the workloads in
                // flight now (and one being scanned) have completed.
                self.log.replay(carry);
                for (e, u) in self.carry_until.iter_mut().enumerate() {
                    let mut need = self.engine_done.get(e).copied().unwrap_or(0)
                        + u64::from(self.engine_in_flight.get(e).copied().unwrap_or(0));
                    if self.scanned_since_queue && self.scan_engine == Some(e) {
                        need += 1;
                    }
                    *u = (*u).max(need);
                }
                if self.scanned_since_queue && self.scan_engine.is_none() {
                    self.carry_idle = true;
                }
                self.log.clear();
            }
        }
        if idle {
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

/// Whether `cmd` is an MI_BATCH_BUFFER_START into a PPGTT (bit 8).
fn is_ppgtt_batch_start(cmd: &[u32]) -> bool {
    cmd.first()
        .is_some_and(|&d| d >> 29 == 0 && (d >> 23) & 0x3f == 0x31 && d & (1 << 8) != 0)
}

/// The range of `len` bytes from `addr` (at least one).
fn span(addr: u64, len: u64) -> Range {
    Range {
        start: addr,
        end: addr.saturating_add(len.max(1)),
    }
}

impl Scan {
    /// A draw, dispatch or media command whose writes are not bounded
    /// writes through the workload's PPGTT only: every frame it maps now
    /// is recorded, once per workload ([`Ppgtt::record_all`]; a mapping
    /// that changes later comes to [`GvtWrites::ppgtt_entry`]). A walk
    /// that fails is unbounded. Later state reads of the workload are
    /// refused (the command may have written anywhere).
    fn through_ppgtt(
        &mut self,
        ppgtt: &mut Ppgtt,
        mem: &mut impl GuestMem,
        sink: &mut impl WriteSink,
    ) {
        self.written.full = true;
        if self.all_mapped {
            return;
        }
        match ppgtt.record_all(mem, sink) {
            Ok(_) => self.all_mapped = true,
            Err(_) => sink.unbounded(),
        }
    }

    /// Records what a command may write at `r`, graphics addresses in the
    /// workload's PPGTT, as its page tables map it now: within
    /// [`MAX_RANGE_PAGES`] per range and [`MAX_RECORD_PAGES`] per
    /// workload, and only if later bounds can be checked against it;
    /// else, and if a page table cannot be read or walked, unbounded.
    fn ppgtt_write(
        &mut self,
        ppgtt: &mut Ppgtt,
        r: Range,
        mem: &mut impl GuestMem,
        sink: &mut impl WriteSink,
    ) {
        if r.end <= r.start {
            return;
        }
        let seen = self.written.contains(r);
        if !self.written.add(r) {
            self.written.full = true;
            return sink.unbounded();
        }
        if seen {
            return;
        }
        let pages = r.end.div_ceil(PAGE_SIZE) - r.start / PAGE_SIZE;
        if pages > MAX_RANGE_PAGES || pages > self.pages_left {
            return sink.unbounded();
        }
        self.pages_left -= pages;
        match ppgtt.record(mem, r.start, r.end, sink) {
            Ok(()) => {}
            Err(Walk::Unmapped | Walk::Mem(_) | Walk::Unsupported) => sink.unbounded(),
        }
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
        let mut w =
            GvtWrites::new(vec![(0, 0); 64], vec![(0, 0); 4], m).with_carry(vec![(0, 0); 64]);
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

    /// Guest memory nothing can be read from.
    struct NoMem;
    impl GuestMem for NoMem {
        fn read(&mut self, gpa: u64, _buf: &mut [u8]) -> Result<(), crate::mem::MemFault> {
            Err(crate::mem::MemFault { gpa })
        }
        fn write(&mut self, gpa: u64, _buf: &[u8]) -> Result<(), crate::mem::MemFault> {
            Err(crate::mem::MemFault { gpa })
        }
    }

    fn sync<C: core::ops::DerefMut<Target = [CtxSlot]>>(
        w: &mut GvtWrites<Vec<(u64, u64)>, Vec<u32>, C>,
    ) -> (Vec<u64>, bool, bool) {
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
        w.scanned(&sdi(3), true, &mut NoMem);
        w.queued(0);
        assert_eq!(
            sync(&mut w),
            (vec![0x1003], false, true),
            "in flight: its scan"
        );
        assert_eq!(sync(&mut w), (vec![0x1003], false, true), "still in flight");
        w.completed(0, LRCA, true);
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
        let mut candidates = 0usize;
        for _ in 0..300 {
            let mut w = writes();
            let mut ggtt: Vec<u64> = (0..64).map(|i| 0x1000 + i).collect();
            let hws = (AP + 63 * PAGE_SIZE) as u32;
            // Stores scanned for a workload not queued yet, and its engine.
            let mut scanned: Vec<u64> = Vec::new();
            let mut engine = 0usize;
            // Per engine (GVT-g runs each in order): stores, and whether
            // kvmgt scanned them (at creation) or will at dispatch.
            let mut queue: [VecDeque<(Vec<u64>, bool)>; 2] = Default::default();
            let mut written = BTreeSet::new();
            // Frames kvmgt wrote outside workloads (not GPU-mapped: an
            // unbounded report does not cover them).
            let mut outside = BTreeSet::new();
            for _ in 0..60 {
                let e = rng.below(2) as usize;
                // dispatch_workload(): the head is scanned if it was not.
                let dispatch = |w: &mut GvtWrites<Vec<(u64, u64)>, Vec<u32>>,
                                q: &mut VecDeque<(Vec<u64>, bool)>| {
                    if let Some((stores, done)) = q.front_mut() {
                        if !*done {
                            w.scan_workload(e as u64, LRCA, None);
                            for &s in stores.iter() {
                                w.scanned(&sdi(s), true, &mut NoMem);
                            }
                            *done = true;
                        }
                    }
                };
                // A scan before queueing and the queueing are one step of
                // kvmgt's under the vGPU's lock: no other workload is
                // queued, run or dropped in between (reports may come).
                let op = match rng.below(11) {
                    3..=5 | 7 | 8 if !scanned.is_empty() => 9,
                    op => op,
                };
                match op {
                    0 => {
                        let g = rng.below(64);
                        ggtt[g as usize] = 0x2000 + rng.below(64);
                        w.ggtt_write(AP / PAGE_SIZE + g, ggtt[g as usize] << 12);
                    }
                    1 => {
                        if scanned.is_empty() {
                            engine = e;
                            w.scan_workload(e as u64, LRCA, None);
                        }
                        let g = rng.below(40);
                        w.scanned(&sdi(g), true, &mut NoMem);
                        scanned.push(g);
                    }
                    2 if !scanned.is_empty() => {
                        w.queued(engine as u64);
                        queue[engine].push_back((core::mem::take(&mut scanned), true));
                    }
                    8 => {
                        // Queued behind others: scanned at dispatch.
                        let stores = (0..1 + rng.below(2)).map(|_| rng.below(40)).collect();
                        w.queued(e as u64);
                        queue[e].push_back((stores, false));
                    }
                    3 => {
                        dispatch(&mut w, &mut queue[e]);
                        if let Some((stores, _)) = queue[e].pop_front() {
                            // The GPU runs it, kvmgt writes the context
                            // image back and the CSB, then completes it.
                            for g in stores {
                                written.insert(ggtt[g as usize]);
                            }
                            written.insert(ggtt[41]);
                            written.insert(ggtt[63]);
                            w.completed(e as u64, LRCA, true);
                        }
                    }
                    7 => {
                        // The head workload runs part-way: kvmgt schedules
                        // it in (the CSB), the GPU does some of its stores;
                        // it stays in flight across reports.
                        dispatch(&mut w, &mut queue[e]);
                        if let Some((stores, _)) = queue[e].front() {
                            for &g in stores {
                                if rng.below(2) == 0 {
                                    written.insert(ggtt[g as usize]);
                                }
                            }
                            written.insert(ggtt[63]);
                        }
                    }
                    4 => {
                        // An engine reset: GVT-g drops its queue unrun.
                        for _ in queue[e].drain(..) {
                            w.completed(e as u64, LRCA, false);
                        }
                    }
                    5 => {
                        dispatch(&mut w, &mut queue[e]);
                        if let Some((stores, _)) = queue[e].pop_front() {
                            // It fails part-way: some of its stores and
                            // the schedule-in CSB, no context write-back.
                            for g in stores {
                                if rng.below(2) == 0 {
                                    written.insert(ggtt[g as usize]);
                                }
                            }
                            written.insert(ggtt[63]);
                            w.completed(e as u64, LRCA, false);
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
                            candidates += got.len();
                            assert!(written.is_subset(&got), "{written:x?} not in {got:x?}");
                        }
                        written.clear();
                        outside.clear();
                    }
                }
            }
        }
        assert!(bounded > 1000, "only {bounded} bounded reports");
        std::println!("{bounded} bounded reports, {candidates} candidates in all");
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
        w.scanned(&sdi(3), true, &mut NoMem);
        w.queued(0);
        w.queued(0);
        w.scanned(&sdi(4), true, &mut NoMem);
        w.queued(0);
        assert_eq!(
            sync(&mut w),
            (vec![0x1003, 0x1004], false, true),
            "in flight"
        );
        for _ in 0..3 {
            w.completed(0, lrca, false);
        }
        assert_eq!(w.in_flight(), 0);
        assert_eq!(sync(&mut w), (vec![0x1003, 0x1004], false, true));
        w.scanned(&sdi(5), true, &mut NoMem);
        w.queued(0);
        w.completed(0, LRCA, true);
        let mut want = vec![0x1005];
        want.extend(ctx());
        assert_eq!(sync(&mut w), (want, false, true));
        // A failed workload: what it may have written stays recorded.
        w.scanned(&sdi(6), true, &mut NoMem);
        w.queued(0);
        assert_eq!(sync(&mut w), (vec![0x1006], false, true), "in flight");
        w.completed(0, lrca, false);
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
        w.queued(0);
        w.kvmgt_wrote(0x9001 * PAGE_SIZE - 2, 4);
        assert_eq!(sync(&mut w), (vec![0x9000, 0x9001], false, true));
        w.completed(0, LRCA, true);
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
        w.queued(0);
        w.completed(0, LRCA, true);
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
        w.scanned(&sdi(5), true, &mut NoMem);
        assert_eq!(sync(&mut w).0, vec![0x1005]);
        w.queued(0);
        w.completed(0, LRCA, true);
        let (f, unbounded, _) = sync(&mut w);
        assert!(!unbounded && f.contains(&0x1005), "{f:x?}");
    }

    #[test]
    fn a_ggtt_change_under_a_scanned_workload_records_both_frames() {
        let mut w = writes();
        w.scanned(&sdi(6), true, &mut NoMem);
        w.ggtt_write(AP / PAGE_SIZE + 6, 0x5000 << 12);
        w.queued(0);
        w.completed(0, LRCA, true);
        let (f, _, _) = sync(&mut w);
        assert!(f.contains(&0x1006) && f.contains(&0x5000), "{f:x?}");
        // After kvmgt's own writes (a status page behind entry 7, say):
        // the frame it wrote through is recorded.
        w.queued(0);
        w.completed(0, LRCA, true);
        sync(&mut w);
        w.queued(0);
        w.completed(0, LRCA, true);
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
        w.scanned(&[0x7b00_0005, 0, 3, 0, 1, 0, 0], true, &mut NoMem);
        w.queued(0);
        w.completed(0, LRCA, true);
        assert!(sync(&mut w).1, "a draw");
        let mut w = writes();
        for p in 0..64 {
            w.scanned(&sdi(63 - p), true, &mut NoMem);
        }
        w.queued(0);
        w.completed(0, LRCA, true);
        assert!(sync(&mut w).1, "more ranges than the log holds");
        let mut w = writes();
        w.queued(0);
        w.reset();
        let (_, unbounded, _) = sync(&mut w);
        assert!(unbounded);
        w.scanned(&sdi(3), true, &mut NoMem);
        w.queued(0);
        w.completed(0, LRCA, true);
        assert!(sync(&mut w).1, "entries unknown after a reset");
        w.restored(&vec![0u8; 8 * 64]);
        w.scanned(&sdi(3), true, &mut NoMem);
        w.queued(0);
        w.completed(0, LRCA, true);
        let (f, unbounded, _) = sync(&mut w);
        assert_eq!(
            (f, unbounded),
            (vec![0], false),
            "restored entries map frame 0"
        );
    }

    use crate::sim::exec::tests::VecMem;
    use crate::writeset::state::tests as st;

    const PML4: u64 = 0x10_0000;
    use crate::writeset::scan::tests::{RT_GPA, RT_PAGES, SS_GPA};
    /// A graphics page of the PPGTT mapped to frame `SCRATCH_GPA >> 12 + i`.
    const DATA_VA: u64 = 0x7_0000_0000;
    const DATA_GPA: u64 = 0x30_0000;

    fn get64(mem: &mut VecMem, gpa: u64) -> u64 {
        let mut b = [0u8; 8];
        mem.read(gpa, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    /// Maps graphics page `va` to guest frame `gpa` in the PPGTT at
    /// [`PML4`]; returns the leaf entry's guest physical address.
    fn map(mem: &mut VecMem, next: &mut u64, va: u64, gpa: u64) -> u64 {
        crate::writeset::scan::tests::map(mem, PML4, next, va, gpa)
    }

    /// Guest memory with the state tracker tests' draw state behind a
    /// PPGTT (kernel, binding table and surface state, a 64-page render
    /// target), and 8 data pages at [`DATA_VA`].
    fn ppgtt_mem() -> VecMem {
        let mut mem = VecMem::new(0x40_0000);
        let mut next = PML4 + 4096;
        crate::writeset::scan::tests::draw_state(&mut mem, PML4, &mut next);
        for i in 0..8 {
            map(&mut mem, &mut next, DATA_VA + i * 4096, DATA_GPA + i * 4096);
        }
        assert!(next <= SS_GPA);
        mem
    }

    type CtxWrites = GvtWrites<Vec<(u64, u64)>, Vec<u32>, Vec<CtxSlot>>;

    fn ctx_writes() -> CtxWrites {
        writes().with_contexts(vec![CtxSlot::EMPTY; 8])
    }

    /// Scans a workload of the context at [`LRCA`] in the PPGTT at
    /// [`PML4`], `cmds` from a PPGTT batch, and queues it.
    fn workload(w: &mut CtxWrites, mem: &mut VecMem, cmds: &[Vec<u32>]) {
        w.scan_workload(0, LRCA, Some(PML4));
        for c in cmds {
            w.scanned(c, false, mem);
        }
        w.queued(0);
    }

    fn rt_frames() -> Vec<u64> {
        (RT_GPA / PAGE_SIZE..RT_GPA / PAGE_SIZE + RT_PAGES).collect()
    }

    /// Every frame the PPGTT at [`PML4`] maps: the report of a draw whose
    /// writes are not bounded.
    fn all_frames(mem: &mut VecMem) -> Vec<u64> {
        let mut v = Vec::new();
        Ppgtt::new(PML4, Format::Gen8)
            .record_all(mem, &mut |f| v.push(f))
            .unwrap();
        v.sort_unstable();
        v
    }

    fn draw_cmds() -> Vec<Vec<u32>> {
        let mut c = st::setup();
        c.push(st::DRAW.to_vec());
        c
    }

    /// An iris draw from a PPGTT batch: the report names its render
    /// target's frames, read through the guest's PPGTT and state at scan
    /// time; the state is kept for the context's next workload.
    #[test]
    fn a_ppgtt_draw_is_bounded_by_its_state_at_scan_time() {
        let mut mem = ppgtt_mem();
        let mut w = ctx_writes();
        workload(&mut w, &mut mem, &draw_cmds());
        let (frames, unbounded, _) = sync(&mut w);
        assert!(!unbounded, "bounded");
        assert_eq!(frames, rt_frames());
        w.completed(0, LRCA, true);
        sync(&mut w);
        workload(&mut w, &mut mem, &[st::DRAW.to_vec()]);
        let (frames, unbounded, _) = sync(&mut w);
        assert!(!unbounded, "the state is kept");
        assert_eq!(frames, rt_frames());
        // Without a scan context (kvmgt without patch 0019) the draw is
        // unbounded as before; without context storage it writes what the
        // PPGTT maps.
        let mut old = ctx_writes();
        for c in draw_cmds() {
            old.scanned(&c, false, &mut mem);
        }
        old.queued(0);
        assert!(sync(&mut old).1);
        let mut none = writes();
        none.scan_workload(0, LRCA, Some(PML4));
        for c in draw_cmds() {
            none.scanned(&c, false, &mut mem);
        }
        none.queued(0);
        let all = all_frames(&mut mem);
        assert!(all.len() > rt_frames().len() + 8);
        let (frames, unbounded, _) = sync(&mut none);
        assert_eq!((frames, unbounded), (all, false));
    }

    /// What makes a context's state unknown: a workload of it that failed
    /// or was dropped, a GGTT change under its image, its PPGTT's shadow
    /// destroyed, a restore; and a binding table pool enabled anywhere
    /// makes a context first seen not golden. A draw then writes what its
    /// PPGTT maps.
    #[test]
    fn contexts_whose_state_is_not_known_fall_back_to_their_ppgtt() {
        let draw = [st::DRAW.to_vec()];
        let forgets: [&dyn Fn(&mut CtxWrites); 4] = [
            &|w| w.completed(0, LRCA, false),
            &|w| w.ggtt_write(LRCA / PAGE_SIZE + 3, 0x4242 << 12),
            &|w| w.ppgtt_destroyed(PML4),
            &|w| w.restored(&[]),
        ];
        for (i, forget) in forgets.iter().enumerate() {
            let mut mem = ppgtt_mem();
            let mut w = ctx_writes();
            workload(&mut w, &mut mem, &draw_cmds());
            w.completed(0, LRCA, true);
            sync(&mut w);
            forget(&mut w);
            sync(&mut w);
            workload(&mut w, &mut mem, &draw);
            let (frames, unbounded, _) = sync(&mut w);
            assert_eq!(
                (frames, unbounded),
                (all_frames(&mut mem), false),
                "case {i}"
            );
        }
        // A GGTT change elsewhere keeps it.
        let mut mem = ppgtt_mem();
        let mut w = ctx_writes();
        workload(&mut w, &mut mem, &draw_cmds());
        w.completed(0, LRCA, true);
        w.ggtt_write(LRCA / PAGE_SIZE + CONTEXT_PAGES, 0x4242 << 12);
        sync(&mut w);
        workload(&mut w, &mut mem, &draw);
        assert_eq!(sync(&mut w).0, rt_frames(), "kept");
        // A pool enabled by another context: this one, first seen after,
        // starts unknown.
        let mut mem = ppgtt_mem();
        let mut w = ctx_writes();
        w.scan_workload(0, LRCA + 0x10_0000, Some(PML4));
        w.scanned(&[0x7919_0002, 1 << 11, 0, 0], false, &mut mem);
        w.queued(0);
        w.completed(0, LRCA + 0x10_0000, true);
        sync(&mut w);
        workload(&mut w, &mut mem, &draw_cmds());
        assert_eq!(
            sync(&mut w).0,
            all_frames(&mut mem),
            "pool seen: not golden"
        );
    }

    /// Commands with addresses: a store without the GGTT bit goes through
    /// the PPGTT; one with it, from a PPGTT batch, through both (some
    /// engines ignore the bit there); a blit's destination through the
    /// PPGTT; an address the PPGTT does not map writes nothing.
    #[test]
    fn ppgtt_commands_are_translated_at_scan_time() {
        let mut mem = ppgtt_mem();
        let sdi = |va: u64, ggtt: bool| {
            vec![
                (0x20 << 23) | (u32::from(ggtt) << 22) | 2,
                va as u32,
                (va >> 32) as u32,
                1,
            ]
        };
        let mut w = ctx_writes();
        workload(
            &mut w,
            &mut mem,
            &[
                sdi(DATA_VA + 2 * PAGE_SIZE, false),
                sdi(AP + 5 * PAGE_SIZE, true),
                sdi(0x9_0000_0000, false),
            ],
        );
        let (frames, unbounded, _) = sync(&mut w);
        assert!(!unbounded);
        assert_eq!(frames, vec![DATA_GPA / PAGE_SIZE + 2, 0x1005]);
        // MI_ATOMIC through the PPGTT: what the PPGTT maps; through the
        // GGTT: unbounded.
        for (g, want) in [(0u32, Some(all_frames(&mut mem))), (1, None)] {
            let mut w = ctx_writes();
            workload(
                &mut w,
                &mut mem,
                &[vec![(0x2f << 23) | (g << 22) | 1, 0x1000, 0]],
            );
            let (frames, unbounded, _) = sync(&mut w);
            match want {
                Some(f) => assert_eq!((frames, unbounded), (f, false)),
                None => assert!(unbounded),
            }
        }
        // XY_COLOR_BLT, 32 bpp, 4 rows of 1024 bytes at DATA_VA.
        let blt = vec![
            (2 << 29) | (0x50 << 22) | (3 << 20) | 5,
            (3 << 24) | 1024,
            0,
            (4 << 16) | 256,
            DATA_VA as u32,
            (DATA_VA >> 32) as u32,
            0,
        ];
        let mut w = ctx_writes();
        workload(&mut w, &mut mem, &[blt]);
        let (frames, unbounded, _) = sync(&mut w);
        assert!(!unbounded);
        assert_eq!(frames, vec![DATA_GPA / PAGE_SIZE]);
    }

    /// A PPGTT entry the guest changes while scanned work may run: a page
    /// table entry's new frame (its 64 KiB block) joins the record, an
    /// upper level's change makes it unbounded; with nothing in flight
    /// nothing is recorded.
    #[test]
    fn ppgtt_changes_under_work_in_flight() {
        let mut mem = ppgtt_mem();
        let mut w = ctx_writes();
        w.ppgtt_entry(1, (0x777 << 12) | 3);
        w.ppgtt_entry(2, (0x777 << 12) | 3);
        assert_eq!(sync(&mut w), (vec![], false, false), "idle");
        workload(&mut w, &mut mem, &[]);
        w.ppgtt_entry(1, (0x777 << 12) | 3);
        w.ppgtt_entry(1, 0x888 << 12);
        let (frames, unbounded, _) = sync(&mut w);
        assert!(!unbounded);
        assert_eq!(frames, (0x770..0x780).collect::<Vec<_>>());
        w.ppgtt_entry(3, (0x999 << 12) | 3);
        assert!(sync(&mut w).1, "a new subtree");
        assert!(sync(&mut w).1, "until the work is done");
        w.completed(0, LRCA, true);
        assert!(sync(&mut w).1);
        assert!(!sync(&mut w).1, "then bounded again");
    }

    /// Random interleavings of scans of PPGTT stores, of draws on state
    /// never seen and of batches kvmgt does not scan, the GPU running
    /// them (part-way or to completion) through the PPGTT as it is when
    /// it writes, the guest rewriting page table entries (reported to
    /// [`GvtWrites::ppgtt_entry`] as GVT-g's shadow follows them), and
    /// reports: every frame written is in the first report after the
    /// write, or that report is unbounded.
    #[test]
    fn every_ppgtt_write_is_in_the_next_report() {
        use std::collections::{BTreeSet, VecDeque};
        let mut rng = crate::testutil::Rng::new(23);
        let mut bounded = 0;
        for _ in 0..200 {
            let mut mem = VecMem::new(0x40_0000);
            let mut next = PML4 + 4096;
            let ptes: Vec<u64> = (0..8)
                .map(|i| map(&mut mem, &mut next, DATA_VA + i * 4096, DATA_GPA + i * 4096))
                .collect();
            let mut w = ctx_writes();
            let mut queue: VecDeque<Vec<u64>> = VecDeque::new();
            let mut written: BTreeSet<u64> = BTreeSet::new();
            for _ in 0..60 {
                match rng.below(5) {
                    0 => {
                        let pages: Vec<u64> = (0..1 + rng.below(2)).map(|_| rng.below(8)).collect();
                        w.scan_workload(0, LRCA, Some(PML4));
                        let kind = rng.below(6);
                        if kind == 0 {
                            // A draw on state never seen: it may write
                            // any page its PPGTT maps.
                            w.scanned(&st::DRAW, false, &mut mem);
                        } else if kind == 1 {
                            // A batch kvmgt does not scan (scan_nonprivbb
                            // off): the ring's batch start, then the ring.
                            w.scanned(&BB_START, true, &mut mem);
                            w.scanned(&[0], true, &mut mem);
                        } else {
                            for &p in &pages {
                                let va = DATA_VA + p * PAGE_SIZE;
                                w.scanned(
                                    &[(0x20 << 23) | 2, va as u32, (va >> 32) as u32, 1],
                                    false,
                                    &mut mem,
                                );
                            }
                        }
                        w.queued(0);
                        queue.push_back(pages);
                    }
                    1 | 2 => {
                        // The GPU writes the head workload's next page
                        // through the PTE as it is now; the last one
                        // completes it.
                        let Some(head) = queue.front_mut() else {
                            continue;
                        };
                        if let Some(p) = head.pop() {
                            let raw = get64(&mut mem, ptes[p as usize]);
                            if raw & 1 != 0 {
                                written.insert(entry_gfn(raw));
                            }
                        }
                        if head.is_empty() {
                            queue.pop_front();
                            w.completed(0, LRCA, true);
                        }
                    }
                    3 => {
                        let p = rng.below(8) as usize;
                        let new = match rng.below(3) {
                            0 => 0,
                            _ => ((0x400 + rng.below(64)) << 12) | 3,
                        };
                        mem.write(ptes[p], &new.to_le_bytes()).unwrap();
                        w.ppgtt_entry(1, new);
                    }
                    _ => {
                        let (frames, unbounded, _) = sync(&mut w);
                        if !unbounded {
                            bounded += 1;
                            for f in &written {
                                assert!(frames.contains(f), "frame {f:#x} written, not reported");
                            }
                        }
                        written.clear();
                    }
                }
            }
        }
        assert!(bounded > 1000, "{bounded} bounded reports");
    }

    /// MI_BATCH_BUFFER_START into the PPGTT at [`DATA_VA`].
    const BB_START: [u32; 3] = [
        (0x31 << 23) | (1 << 8) | 1,
        DATA_VA as u32,
        (DATA_VA >> 32) as u32,
    ];

    /// GVT-g scans a PPGTT batch only where `scan_nonprivbb` is set. A
    /// batch start in the ring that the ring's next command follows was
    /// not scanned: it writes what the PPGTT maps. One its batch's
    /// commands follow (in a PPGTT buffer) was. One that ends the scan is
    /// not known: unbounded; as without a scan context.
    #[test]
    fn a_batch_kvmgt_does_not_scan_writes_what_its_ppgtt_maps() {
        let mut mem = ppgtt_mem();
        let all = all_frames(&mut mem);
        let sdi = |va: u64| vec![(0x20 << 23) | 2, va as u32, (va >> 32) as u32, 1];
        type Case<'a> = (&'a [(&'a [u32], bool)], Option<Vec<u64>>);
        let cases: [Case<'_>; 3] = [
            (&[(&BB_START, true), (&[0], true)], Some(all.clone())),
            (
                &[
                    (&BB_START, true),
                    (&sdi(DATA_VA + PAGE_SIZE), false),
                    (&[0x0a << 23], false),
                    (&[0], true),
                ],
                Some(vec![DATA_GPA / PAGE_SIZE + 1]),
            ),
            (&[(&BB_START, true)], None),
        ];
        for (i, (cmds, want)) in cases.iter().enumerate() {
            let mut w = ctx_writes();
            w.scan_workload(0, LRCA, Some(PML4));
            for (c, ggtt) in cmds.iter() {
                w.scanned(c, *ggtt, &mut mem);
            }
            w.queued(0);
            let (frames, unbounded, _) = sync(&mut w);
            match want {
                Some(f) => assert_eq!((&frames, unbounded), (f, false), "case {i}"),
                None => assert!(unbounded, "case {i}"),
            }
        }
        let mut w = ctx_writes();
        w.scanned(&BB_START, true, &mut mem);
        w.scanned(&[0], true, &mut mem);
        w.queued(0);
        assert!(sync(&mut w).1, "no scan context");
    }

    /// A record that runs out of room makes the report unbounded and is
    /// counted.
    #[test]
    fn overflows_are_counted() {
        let mut w = writes();
        w.queued(0);
        // 64 ranges of room: 65 frames two apart.
        for i in 0..65 {
            w.ggtt_write(AP / PAGE_SIZE + i, (0x3000 + 2 * i) << 12);
        }
        assert_eq!(w.overflows(), 0);
        assert!(sync(&mut w).1);
        assert_eq!(w.overflows(), 1);
        // The carry-over holds it unbounded until the workload is done.
        assert!(sync(&mut w).1);
        w.completed(0, LRCA, true);
        assert!(sync(&mut w).1);
        assert!(!sync(&mut w).1);
        assert_eq!(w.overflows(), 1);
    }
}
