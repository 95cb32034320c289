// SPDX-License-Identifier: GPL-2.0

//! VFIO v2 live migration of a sim vGPU, and its DMA dirty logging.
//!
//! GPU pages are guest RAM and travel with the VMM's RAM migration. gmig
//! tells the VMM which of them the vGPU really changed through the VFIO DMA
//! logging report, found by hashing ([`HashTracker`]) under the pre-copy
//! policy of [`planner`] (module parameters `precopy` and `dirty`). The
//! device's data fd carries the vGPU state: configuration space, registers
//! with pending submissions, and the GGTT partition, as a validated
//! [`stream`] image. An image is emitted in PRE_COPY (the state while
//! running) and a final one in STOP_COPY; the destination validates every
//! image it receives and applies the last one. If it sits at another GGTT
//! partition, pending contexts are remapped ([`remap`]).
//!
//! Arcs run with the shim's `state_mutex` held and take the vGPU lock.

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
    time::{Instant, Monotonic}, //
};

use crate::{
    ffi::{from_result, set_dirty, IovaBitmap},
    gmig_core::{
        gtt::{Partition, PAGE_SIZE},
        planner::{self, Action, DirtySource, Phase, Policy},
        remap,
        sim::{
            config::CONFIG_SIZE,
            vgpu::{Regs, SimVgpu, REGS_BYTES, TYPES},
        },
        stream::{self, Section, FLAG_MANDATORY},
        tracker::HashTracker,
    },
    vgpu::{vgpu_ref, DmaMem, Inner, Shared},
};

// VFIO migration states (include/uapi/linux/vfio.h).
const STOP: u32 = 1;
const RUNNING: u32 = 2;
const STOP_COPY: u32 = 3;
const RESUMING: u32 = 4;
const RUNNING_P2P: u32 = 5;
const PRE_COPY: u32 = 6;
const PRE_COPY_P2P: u32 = 7;

/// Provider id of the sim in stream headers.
const PROVIDER_SIM: u16 = 1;
/// The most a destination accepts in one migration.
const MAX_RESUME_BYTES: usize = 8 << 20;
/// The tracker's window is capped (8 bytes per page: 32 MiB for 16 GiB);
/// GPU-writable pages above it are always reported dirty.
const MAX_WINDOW_PAGES: u64 = (16u64 << 30) / PAGE_SIZE;

extern "C" {
    fn get_random_u64() -> u64;
    fn gmig_param_precopy() -> *const kernel::ffi::c_char;
    fn gmig_param_dirty() -> *const kernel::ffi::c_char;
}

fn param(f: unsafe extern "C" fn() -> *const kernel::ffi::c_char) -> &'static str {
    // SAFETY: `f` is one of the shim's `gmig_param_*()` accessors (no
    // preconditions), which return their NUL-terminated module parameter
    // buffer; it lives as long as the module.
    let s = unsafe { kernel::str::CStr::from_char_ptr(f()) };
    s.to_str().unwrap_or("")
}

/// The policies of this migration, from the module parameters.
fn policies() -> (Policy, DirtySource) {
    let p = Policy::parse(param(gmig_param_precopy)).unwrap_or(Policy::Oneshot);
    let d = DirtySource::parse(param(gmig_param_dirty)).unwrap_or(DirtySource::Hash);
    (p, d)
}

/// Per-migration statistics (debugfs `stats`), reset when one starts.
#[derive(Default, Clone, Copy)]
struct MigStats {
    precopy_rounds: u64,
    precopy_bytes: u64,
    stopcopy_bytes: u64,
    pages_dirty_stopcopy: u64,
    pages_sent_stopcopy: u64,
    pages_reported_precopy: u64,
    downtime_us: i64,
    resume_us: i64,
    remap_patched: u64,
    stream_errors: u64,
    images_applied: u64,
    reports: [u64; 2],
    read_errors: u64,
}

struct Tracking {
    tracker: HashTracker<KVVec<u64>>,
    scratch: KBox<[u8; 4096]>,
    /// GPU-writable pages outside the window (always reported).
    outside: u64,
}

/// Migration state of one vGPU.
pub(crate) struct Migration {
    state: u32,
    policy: Policy,
    source: DirtySource,
    stats: MigStats,
    tracking: Option<Tracking>,
    /// Save side: bytes to hand out and how many were read.
    image: KVVec<u8>,
    pos: usize,
    /// Resume side: bytes written so far.
    incoming: KVVec<u8>,
    stopped_at: Option<Instant<Monotonic>>,
}

fn state_name(s: u32) -> &'static str {
    match s {
        STOP => "stop",
        RUNNING => "running",
        STOP_COPY => "stop_copy",
        RESUMING => "resuming",
        RUNNING_P2P => "running_p2p",
        PRE_COPY => "pre_copy",
        PRE_COPY_P2P => "pre_copy_p2p",
        _ => "error",
    }
}

/// Bytes of one state image of a vGPU of `entries` GGTT entries.
fn image_len(entries: usize) -> usize {
    stream::HEADER_LEN
        + 4 * stream::SECTION_HEADER_LEN
        + CONFIG_SIZE
        + REGS_BYTES
        + 16
        + 8 * entries
}

impl Migration {
    pub(crate) fn new() -> Self {
        let (policy, source) = policies();
        Self {
            state: RUNNING,
            policy,
            source,
            stats: MigStats::default(),
            tracking: None,
            image: KVVec::new(),
            pos: 0,
            incoming: KVVec::new(),
            stopped_at: None,
        }
    }

    /// debugfs `stats` lines of the migration.
    pub(crate) fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = &self.stats;
        let (tracked, hashed, outside) = self.tracking.as_ref().map_or((0, 0, 0), |t| {
            (t.tracker.tracked(), t.tracker.hashed(), t.outside)
        });
        writeln!(f, "state: {}", state_name(self.state))?;
        writeln!(f, "precopy: {}", self.policy.name())?;
        writeln!(f, "dirty: {}", self.source.name())?;
        writeln!(f, "precopy_rounds: {}", s.precopy_rounds)?;
        writeln!(f, "precopy_bytes: {}", s.precopy_bytes)?;
        writeln!(f, "stopcopy_bytes: {}", s.stopcopy_bytes)?;
        writeln!(f, "pages_tracked: {}", tracked)?;
        writeln!(f, "pages_untrackable: {}", outside)?;
        writeln!(f, "pages_hashed: {}", hashed)?;
        writeln!(f, "pages_reported_precopy: {}", s.pages_reported_precopy)?;
        writeln!(f, "pages_dirty_stopcopy: {}", s.pages_dirty_stopcopy)?;
        writeln!(f, "pages_sent_stopcopy: {}", s.pages_sent_stopcopy)?;
        writeln!(f, "downtime_us: {}", s.downtime_us)?;
        writeln!(f, "resume_us: {}", s.resume_us)?;
        writeln!(f, "remap_patched: {}", s.remap_patched)?;
        writeln!(f, "stream_errors: {}", s.stream_errors)?;
        writeln!(f, "images_applied: {}", s.images_applied)?;
        writeln!(
            f,
            "log_reports: {} precopy, {} stopcopy",
            s.reports[0], s.reports[1]
        )?;
        writeln!(f, "log_read_errors: {}", s.read_errors)
    }

    /// A GGTT entry changed: the page it maps becomes (or stops being)
    /// GPU-writable.
    pub(crate) fn ggtt_update(&mut self, old: u64, new: u64) {
        use crate::gmig_core::gtt::Pte;
        if let Some(t) = self.tracking.as_mut() {
            if let Some(p) = Pte::decode(old) {
                // Keep tracking: another entry may map it, and its last
                // content must still be checked.
                let _ = p;
            }
            if let Some(p) = Pte::decode(new) {
                if t.tracker.track(p.gfn()).is_err() {
                    t.outside += 1;
                }
            }
        }
    }

    /// The command streamer wrote guest frame `gfn`.
    pub(crate) fn gpu_wrote(&mut self, gfn: u64) {
        if let Some(t) = self.tracking.as_mut() {
            if !t.tracker.is_tracked(gfn) && t.tracker.track(gfn).is_err() {
                t.outside += 1;
            }
        }
    }

    /// A DMA mapping went away; nothing is pinned, and reads of pages in it
    /// fail and count as changed at the next report.
    pub(crate) fn dma_unmap(&mut self, _iova: u64, _length: u64) {}

    fn reset_stats(&mut self) {
        let (p, d) = policies();
        self.policy = p;
        self.source = d;
        self.stats = MigStats::default();
    }

    /// A save starts: reset the counters unless dirty logging already
    /// started this migration (QEMU starts logging first).
    fn start_save(&mut self) {
        if self.tracking.is_none() {
            self.reset_stats();
        }
    }
}

fn build_image(sim: &SimVgpu<KVVec<u64>>, out: &mut KVVec<u8>) -> Result {
    let entries = sim.ggtt();
    let len = image_len(entries.len());
    let start = out.len();
    out.resize(start + len, 0, GFP_KERNEL)?;
    let buf = &mut out[start..];
    let type_index = TYPES
        .iter()
        .position(|t| core::ptr::eq(t, sim.vgpu_type()))
        .and_then(|i| u16::try_from(i).ok())
        .ok_or(EINVAL)?;
    let map = |_| EINVAL;
    let mut w = stream::Writer::new(buf, PROVIDER_SIM, type_index).map_err(map)?;
    w.section(Section::Config as u16, FLAG_MANDATORY, CONFIG_SIZE, |p| {
        p.copy_from_slice(sim.config().bytes())
    })
    .map_err(map)?;
    w.section(Section::Regs as u16, FLAG_MANDATORY, REGS_BYTES, |p| {
        let mut r = [0u8; REGS_BYTES];
        sim.regs().encode(&mut r);
        p.copy_from_slice(&r);
    })
    .map_err(map)?;
    let p = sim.partition();
    w.section(
        Section::Ggtt as u16,
        FLAG_MANDATORY,
        16 + 8 * entries.len(),
        |b| {
            b[0..8].copy_from_slice(&p.base.to_le_bytes());
            b[8..16].copy_from_slice(&p.size.to_le_bytes());
            for (i, e) in entries.iter().enumerate() {
                if let Some(c) = b.get_mut(16 + 8 * i..24 + 8 * i) {
                    c.copy_from_slice(&e.to_le_bytes());
                }
            }
        },
    )
    .map_err(map)?;
    let n = w.finish().map_err(map)?;
    out.truncate(start + n);
    Ok(())
}

/// Validates every image in `data` and applies the last one.
fn apply_images(s: &Shared, inner: &mut Inner, data: &[u8]) -> Result {
    let limits = stream::Limits {
        max_total: MAX_RESUME_BYTES,
        max_section: MAX_RESUME_BYTES,
    };
    let mut off = 0usize;
    let mut last: Option<&[u8]> = None;
    while off < data.len() {
        let rest = data.get(off..).ok_or(EINVAL)?;
        let total = rest
            .get(20..24)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(usize::MAX);
        let image = rest.get(..total.min(rest.len())).ok_or(EINVAL)?;
        let hdr = stream::validate(image, &limits).map_err(|e| {
            dev_err!(
                s.dev,
                "migration stream rejected at byte {}: {:?}\n",
                off,
                e
            );
            EINVAL
        })?;
        let ty = TYPES.get(usize::from(hdr.vgpu_type)).ok_or(EINVAL)?;
        if hdr.provider != PROVIDER_SIM || !core::ptr::eq(ty, inner.sim.vgpu_type()) {
            dev_err!(
                s.dev,
                "migration stream is for provider {} type {}, this vGPU is {}\n",
                hdr.provider,
                hdr.vgpu_type,
                inner.sim.vgpu_type().name
            );
            return Err(EINVAL);
        }
        last = Some(image);
        off += image.len();
    }
    let image = last.ok_or_else(|| {
        dev_err!(s.dev, "migration stream is empty\n");
        EINVAL
    })?;

    // Decode every section before changing anything.
    let mut config = None;
    let mut regs = None;
    let mut ggtt: Option<(Partition, &[u8])> = None;
    for sec in stream::sections_unchecked(image) {
        let (ty, _, payload) = sec.map_err(|_| EINVAL)?;
        match ty {
            t if t == Section::Config as u16 => {
                let b: &[u8; CONFIG_SIZE] = payload.try_into().map_err(|_| EINVAL)?;
                config = Some(*b);
            }
            t if t == Section::Regs as u16 => {
                let b: &[u8; REGS_BYTES] = payload.try_into().map_err(|_| EINVAL)?;
                regs = Some(Regs::decode(b).ok_or(EINVAL)?);
            }
            t if t == Section::Ggtt as u16 => {
                let base = payload.get(0..8).ok_or(EINVAL)?;
                let size = payload.get(8..16).ok_or(EINVAL)?;
                let base = u64::from_le_bytes(base.try_into().map_err(|_| EINVAL)?);
                let size = u64::from_le_bytes(size.try_into().map_err(|_| EINVAL)?);
                let p = Partition::new(base, size).ok_or(EINVAL)?;
                let entries = payload.get(16..).ok_or(EINVAL)?;
                if p.size != inner.sim.partition().size || entries.len() as u64 != 8 * p.entries() {
                    dev_err!(
                        s.dev,
                        "migration stream: GGTT section does not fit this vGPU\n"
                    );
                    return Err(EINVAL);
                }
                ggtt = Some((p, entries));
            }
            _ => {} // end marker, optional sections
        }
    }
    let (Some(config), Some(regs), Some((src, entries))) = (config, regs, ggtt) else {
        dev_err!(s.dev, "migration stream lacks a mandatory section\n");
        return Err(EINVAL);
    };

    let mut table = KVVec::with_capacity(entries.len() / 8, GFP_KERNEL)?;
    for c in entries.chunks_exact(8) {
        table.push(
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            GFP_KERNEL,
        )?;
    }
    let dst = inner.sim.partition();
    inner.sim.restore_state(regs, &config);
    if !inner.sim.restore_ggtt(&table) {
        return Err(EINVAL);
    }
    if src.base != dst.base {
        // Dynamic graphics address remapping of the pending contexts.
        let mut mem = DmaMem::new(s);
        let patched = remap::remap_pending(&mut inner.sim, src, dst, &mut mem).map_err(|e| {
            dev_err!(s.dev, "remapping pending contexts failed: {:?}\n", e);
            EINVAL
        })?;
        inner.mig.stats.remap_patched = patched;
        dev_info!(
            s.dev,
            "restored from GGTT base {:#x} at {:#x}: {} graphics addresses remapped\n",
            src.base,
            dst.base,
            patched
        );
    }
    inner.mig.stats.images_applied += 1;
    Ok(())
}

fn arc(s: &Shared, cur: u32, next: u32) -> Result {
    let mut guard = s.inner.lock();
    let inner = &mut *guard;
    let mig = &mut inner.mig;
    match (cur, next) {
        (RUNNING, PRE_COPY) | (RUNNING_P2P, PRE_COPY_P2P) => {
            mig.start_save();
            mig.image.clear();
            mig.pos = 0;
            build_image(&inner.sim, &mut inner.mig.image)?;
        }
        (PRE_COPY, RUNNING) | (PRE_COPY_P2P, RUNNING_P2P) | (STOP_COPY, STOP) => {
            mig.image.clear();
            mig.pos = 0;
            if let Some(t) = mig.stopped_at.take() {
                if cur == STOP_COPY {
                    mig.stats.downtime_us = t.elapsed().as_micros_ceil();
                }
            }
        }
        (RUNNING_P2P, STOP) => {
            inner.quiesced = true;
            mig.stopped_at = Some(Instant::now());
        }
        (STOP, RUNNING_P2P) => {
            inner.quiesced = false;
            mig.stopped_at = None;
            if !inner.sim.pending().is_empty() {
                s.vdev.kick_exec();
            }
        }
        (PRE_COPY_P2P, STOP_COPY) | (STOP, STOP_COPY) => {
            if cur == PRE_COPY_P2P {
                inner.quiesced = true;
                mig.stopped_at = Some(Instant::now());
            } else {
                mig.start_save();
                mig.image.clear();
                mig.pos = 0;
            }
            // Unread pre-copy bytes still go out first: images are whole.
            let unread = mig.image.len() - mig.pos;
            mig.stats.stopcopy_bytes = 0;
            let before = mig.image.len();
            build_image(&inner.sim, &mut inner.mig.image)?;
            let mig = &mut inner.mig;
            mig.stats.stopcopy_bytes = (mig.image.len() - before + unread) as u64;
        }
        (STOP, RESUMING) => {
            mig.reset_stats();
            mig.incoming.clear();
        }
        (RESUMING, STOP) => {
            let start = Instant::<Monotonic>::now();
            let data = core::mem::take(&mut inner.mig.incoming);
            let res = apply_images(s, inner, &data);
            inner.mig.stats.resume_us = start.elapsed().as_micros_ceil();
            if res.is_err() {
                inner.mig.stats.stream_errors += 1;
                inner.mig.incoming = data;
            }
            res?;
        }
        (RUNNING, RUNNING_P2P)
        | (RUNNING_P2P, RUNNING)
        | (PRE_COPY, PRE_COPY_P2P)
        | (PRE_COPY_P2P, PRE_COPY) => {}
        _ => {
            dev_err!(s.dev, "unexpected migration arc {} -> {}\n", cur, next);
            return Err(EINVAL);
        }
    }
    inner.mig.state = next;
    Ok(())
}

/// One arc of the migration state machine.
#[no_mangle]
extern "C" fn gmig_rs_mig_arc(vgpu: *mut c_void, cur: u32, next: u32) -> c_int {
    from_result(arc(&vgpu_ref(vgpu).shared, cur, next))
}

/// read() of the saving data fd: 0 means "nothing now" in PRE_COPY and
/// "end of stream" in STOP_COPY.
///
/// # Safety
///
/// `buf` is valid for `len` bytes of writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_read(vgpu: *mut c_void, buf: *mut c_void, len: usize) -> isize {
    let s = &vgpu_ref(vgpu).shared;
    let mut inner = s.inner.lock();
    let mig = &mut inner.mig;
    let Some(avail) = mig.image.get(mig.pos..) else {
        return EINVAL.to_errno() as isize;
    };
    let n = avail.len().min(len);
    // SAFETY: `buf` is valid for `len >= n` bytes (caller contract) and does
    // not overlap the image.
    unsafe { core::ptr::copy_nonoverlapping(avail.as_ptr(), buf.cast::<u8>(), n) };
    mig.pos += n;
    if n > 0 && matches!(mig.state, PRE_COPY | PRE_COPY_P2P) {
        mig.stats.precopy_bytes += n as u64;
        if mig.pos == mig.image.len() {
            mig.stats.precopy_rounds += 1;
        }
    }
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// write() of the resuming data fd.
///
/// # Safety
///
/// `buf` is valid for `len` bytes of reads.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_write(vgpu: *mut c_void, buf: *const c_void, len: usize) -> isize {
    let s = &vgpu_ref(vgpu).shared;
    // SAFETY: `buf` is valid for `len` bytes (caller contract).
    let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let mut inner = s.inner.lock();
    let mig = &mut inner.mig;
    if mig.incoming.len().saturating_add(len) > MAX_RESUME_BYTES {
        mig.stats.stream_errors += 1;
        dev_err!(
            s.dev,
            "migration stream larger than {} bytes\n",
            MAX_RESUME_BYTES
        );
        return EFBIG.to_errno() as isize;
    }
    match mig.incoming.extend_from_slice(data, GFP_KERNEL) {
        Ok(()) => isize::try_from(len).unwrap_or(isize::MAX),
        Err(_) => ENOMEM.to_errno() as isize,
    }
}

/// VFIO_MIG_GET_PRECOPY_INFO: unread bytes of the current image.
///
/// # Safety
///
/// Both pointers are valid for writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_precopy_info(
    vgpu: *mut c_void,
    initial: *mut u64,
    dirty: *mut u64,
) -> c_int {
    let s = &vgpu_ref(vgpu).shared;
    let inner = s.inner.lock();
    let mig = &inner.mig;
    if !matches!(mig.state, PRE_COPY | PRE_COPY_P2P) {
        return EINVAL.to_errno();
    }
    let left = (mig.image.len() - mig.pos) as u64;
    // SAFETY: valid for writes (caller contract).
    unsafe {
        *initial = left;
        *dirty = 0;
    }
    0
}

/// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: size of a stop-copy image.
///
/// # Safety
///
/// `size` is valid for writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_data_size(vgpu: *mut c_void, size: *mut u64) -> c_int {
    let s = &vgpu_ref(vgpu).shared;
    let inner = s.inner.lock();
    let n = image_len(inner.sim.ggtt().len()) as u64;
    // SAFETY: valid for writes (caller contract).
    unsafe { *size = n };
    0
}

/// The migration ended abnormally (close, reset): drop its buffers and
/// resume scheduling.
#[no_mangle]
extern "C" fn gmig_rs_mig_abort(vgpu: *mut c_void) {
    let s = &vgpu_ref(vgpu).shared;
    let mut inner = s.inner.lock();
    inner.quiesced = false;
    let mig = &mut inner.mig;
    mig.state = RUNNING;
    mig.image = KVVec::new();
    mig.incoming = KVVec::new();
    mig.pos = 0;
    mig.stopped_at = None;
}

fn log_start(s: &Shared, ranges: &[u64]) -> Result {
    let mut end = 0u64;
    let mut start = u64::MAX;
    for r in ranges.chunks_exact(2) {
        start = start.min(r[0] / PAGE_SIZE);
        end = end.max(r[1] / PAGE_SIZE + 1);
    }
    if start >= end {
        return Err(EINVAL);
    }
    let pages = (end - start).min(MAX_WINDOW_PAGES);
    let slots = KVVec::from_elem(0u64, usize::try_from(pages)?, GFP_KERNEL)?;
    let scratch = KBox::new([0u8; 4096], GFP_KERNEL)?;
    // SAFETY: `get_random_u64()` has no preconditions.
    let seed = unsafe { get_random_u64() };
    let mut tracker = HashTracker::new(start, seed, slots);
    let mut guard = s.inner.lock();
    let inner = &mut *guard;
    let mut outside = 0;
    for gfn in inner.sim.ggtt_frames() {
        if tracker.track(gfn).is_err() {
            outside += 1;
        }
    }
    inner.mig.reset_stats();
    inner.mig.tracking = Some(Tracking {
        tracker,
        scratch,
        outside,
    });
    dev_info!(
        s.dev,
        "dirty logging on frames {:#x}..{:#x}: {} GPU pages tracked (precopy={} dirty={})\n",
        start,
        start + pages,
        inner
            .mig
            .tracking
            .as_ref()
            .map_or(0, |t| t.tracker.tracked()),
        inner.mig.policy.name(),
        inner.mig.source.name()
    );
    Ok(())
}

/// DMA_LOGGING_START: `ranges` holds `n` (first, last) IOVA pairs.
///
/// # Safety
///
/// `ranges` is valid for `2 * n` reads.
#[no_mangle]
unsafe extern "C" fn gmig_rs_log_start(vgpu: *mut c_void, ranges: *const u64, n: u32) -> c_int {
    let Ok(n) = usize::try_from(n) else {
        return EINVAL.to_errno();
    };
    // SAFETY: valid for `2 * n` reads (caller contract).
    let r = unsafe { core::slice::from_raw_parts(ranges, 2 * n) };
    from_result(log_start(&vgpu_ref(vgpu).shared, r))
}

/// DMA_LOGGING_STOP.
#[no_mangle]
extern "C" fn gmig_rs_log_stop(vgpu: *mut c_void) {
    vgpu_ref(vgpu).shared.inner.lock().mig.tracking = None;
}

fn log_report(s: &Shared, iova: u64, length: u64, dirty: *mut IovaBitmap) -> Result {
    let mut guard = s.inner.lock();
    let inner = &mut *guard;
    let stopped = inner.quiesced || !inner.open;
    let mig = &mut inner.mig;
    let (policy, source) = (mig.policy, mig.source);
    let Some(t) = mig.tracking.as_mut() else {
        return Err(EINVAL);
    };
    let phase = if stopped {
        Phase::StopCopy
    } else {
        Phase::PreCopy
    };
    let first = iova / PAGE_SIZE;
    let last = iova.saturating_add(length) / PAGE_SIZE;
    let action = planner::decide(policy, source, phase);
    let mut reported = 0u64;
    let mut changed = 0u64;
    let mut read_errors = 0u64;
    let mark = |gfn: u64| {
        // SAFETY: `dirty` is the bitmap of this report (caller contract).
        unsafe { set_dirty(dirty, gfn * PAGE_SIZE, PAGE_SIZE) };
    };
    match action {
        Action::Nothing => {}
        Action::All => {
            for gfn in t
                .tracker
                .tracked_frames()
                .filter(|g| (first..last).contains(g))
            {
                mark(gfn);
                reported += 1;
            }
        }
        Action::Snapshot | Action::Changed => {
            let vdev = s.vdev;
            let base = t.tracker.base();
            let window = t.tracker.window();
            let lo = first.max(base);
            let hi = last.min(base + window);
            let mut gfn = lo;
            while gfn < hi {
                let wanted = match action {
                    Action::Snapshot => t.tracker.needs_hash(gfn),
                    _ => t.tracker.is_tracked(gfn),
                };
                if wanted {
                    let ok = vdev.dma_read(gfn * PAGE_SIZE, &mut t.scratch[..]).is_ok();
                    read_errors += u64::from(!ok);
                    let c = if ok {
                        t.tracker.check(gfn, &t.scratch[..], true).unwrap_or(true)
                    } else {
                        true
                    };
                    if c && action == Action::Changed {
                        mark(gfn);
                        reported += 1;
                        changed += 1;
                    }
                }
                gfn += 1;
            }
        }
    }
    let mig_stats = &mut inner.mig.stats;
    mig_stats.read_errors += read_errors;
    let slot = match phase {
        Phase::PreCopy => 0,
        Phase::StopCopy => 1,
    };
    if let Some(r) = mig_stats.reports.get_mut(slot) {
        *r += 1;
    }
    match phase {
        Phase::StopCopy => {
            mig_stats.pages_dirty_stopcopy += if action == Action::All {
                reported
            } else {
                changed
            };
            mig_stats.pages_sent_stopcopy += reported;
        }
        _ => mig_stats.pages_reported_precopy += reported,
    }
    Ok(())
}

/// DMA_LOGGING_REPORT for `[iova, iova + length)`.
#[no_mangle]
extern "C" fn gmig_rs_log_report(
    vgpu: *mut c_void,
    iova: u64,
    length: u64,
    dirty: *mut IovaBitmap,
) -> c_int {
    from_result(log_report(&vgpu_ref(vgpu).shared, iova, length, dirty))
}
