// SPDX-License-Identifier: GPL-2.0

//! The gvt provider: gmig as kvmgt's companion module (patches/gvt).
//!
//! `shim/gmig_gvt.c` finds kvmgt's companion interface at load time and
//! registers gmig's ops with it; each callback lands here. Every GVT-g
//! vGPU created while gmig is loaded becomes a [`GvtDev`]: kvmgt's
//! vfio_device gets gmig's VFIO migration and DMA logging ops (the shim's
//! `gmig_mig.c`, the same as the sim's), which [`crate::migration`] runs
//! through [`MigDevice`] on a [`GvtVgpu`] provider:
//!
//! - quiesce/resume: kvmgt's `intel_gvt_companion_{stop,start}_schedule()`;
//! - the state image ([`gvt::write_image`] / [`gvt::decode_image`]):
//!   `intel_gvt_companion_{save,restore}_state()`;
//! - guest pages to hash ([`Lent`], `hashing=inplace`): those kvmgt holds
//!   pinned are hashed where they are, in batches of up to 64 frames, each
//!   page lent for the time of its hash under kvmgt's DMA cache lock
//!   (`intel_gvt_companion_read_pinned()`, patch 0021); the others (a
//!   PPGTT page the shadow has not reached, a frame kvmgt unpinned while
//!   it stays tracked), and every page with `hashing=copy` or a kvmgt
//!   without patch 0021, are copied with `intel_gvt_companion_rw_gpa()`;
//! - writable pages: the pin hooks' record ([`Hooks::pinned`]); pins and
//!   GGTT writes during dirty logging join the tracker (reported at the
//!   next report);
//! - what the GPU and kvmgt may have written ([`GvtWrites`],
//!   [`gvt::narrow`]): the command scanner hook runs every command of
//!   every workload through the write-set analysis the sim uses, GGTT
//!   addresses through the guest's GGTT as the GGTT write hook reported
//!   it; a workload's context write-back and the status pages kvmgt's CSB
//!   emulation writes join them, and the frames kvmgt writes outside
//!   workloads (the OpRegion mailbox, `gpa_written`) are noted as written
//!   in the next report, tracked or not; at each report they are the
//!   re-hash candidates. A workload in flight at the report keeps its
//!   scanned frames (and the status pages) as candidates until it
//!   completes; a command whose writes cannot be bounded (PPGTT, draws,
//!   ...) makes every tracked page one; an idle vGPU costs none;
//! - pending workloads (queued, not run at the stop): saved with
//!   `intel_gvt_companion_save_workloads()` into the stop-copy image,
//!   re-created in order on the destination with
//!   `intel_gvt_companion_resubmit_workloads()` ([`gvt::pending`]);
//! - after a restore from a source whose graphics memory sat elsewhere,
//!   the command scanner hook moves graphics addresses of resubmitted
//!   workloads to this vGPU's slices ([`AuditMap`],
//!   [`gvt::patch_command`]), and the `map_gma` hook those kvmgt takes
//!   from the guest outside commands: context descriptors, ring starts,
//!   guest GGTT MMIO accesses, fence ranges, status pages and display
//!   plane bases ([`AuditMap::map_guest`], [`gvt::gma`]); a restore has
//!   kvmgt check every part first (`intel_gvt_companion_check_state()`).
//!
//! Lock order: [`GvtDev::inner`] (the migration's vGPU lock), then
//! [`GvtDev::status_regs`], then kvmgt's `vgpu_lock` (taken by its
//! services), then [`GvtDev::hooks`]. kvmgt calls the hooks with its
//! `vgpu_lock` held, so they take `hooks` only.
//!
//! Hashing in place adds kvmgt's `cache_lock` (the lock of its DMA cache,
//! which every pin and unpin of kvmgt takes, its `dma_unmap` callback's
//! included) after `inner`: a scan runs with `inner` held and nothing else
//! of gmig's (`sync()` has dropped `hooks` and `status_regs`), and
//! `read_pinned` takes `cache_lock` and calls [`hash_lent`], which takes no
//! lock. kvmgt already orders `vgpu_lock` -> `cache_lock` (a GTT write
//! pins under both) and `cache_lock` -> `hooks` (the pin and unpin hooks
//! run under it), and type1's `device_list_lock` -> `cache_lock` (its unmap
//! notifier); none of those holders takes `inner` (the hooks take `hooks`
//! only, kvmgt's `dma_unmap` is its own), so `inner` -> `cache_lock` closes
//! no cycle. gmig pins nothing here: a page kvmgt unpins is unpinned once
//! `cache_lock` is free, after the hash, as the DMA-unmap rules want.
//!
//! A re-hash spread over CPUs (`crate::migration::crew`, module parameter
//! `rehash_cpus`) calls `read_pinned` and `rw_gpa` from work items too,
//! one [`Lent`] per lane, while the scan's caller holds `inner` and waits
//! for them: a work item holds nothing of gmig's when it takes
//! `cache_lock` (or, in `rw_gpa`, the VFIO locks), so the order is the
//! caller's own, `inner` -> `cache_lock`, and no crew lock is held across
//! either. kvmgt's `cache_lock` is never held across a crew fork (a lane
//! takes it only inside one `read_pinned` call), and `inner` is never
//! taken by a lane.
//!
//! None of it can run without an Intel GPU (Broadwell to Comet Lake);
//! `tests/gvt-mock` drives all of it through a mock kvmgt.

use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use crate::log::dev_ratelimited;
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    bindings,
    debugfs::{Dir, File},
    device::Device,
    ffi::{c_int, c_uint, c_void},
    new_mutex,
    page::BorrowedPage,
    prelude::*,
    rbtree::RBTree,
    str::CString,
    sync::{aref::ARef, Arc, Mutex, MutexGuard},
    time::{delay::fsleep, Delta, Instant, Monotonic},
    types::ForeignOwnable,
    uaccess::UserSliceReader, //
};

use crate::{
    ffi::to_result,
    gmig_core::{
        cmd::Mode,
        gvt::{
            self, AuditMap, EventKind, GgttMirror, GvtHost, GvtLayout, GvtVgpu, GvtWrites, Part,
            PendingList, PendingWorkload, StateSizes, StateSource, COMPANION_VERSION, MAX_PENDING,
            WORKLOAD_LEN, WORKLOAD_WORDS,
        },
        mem::{GuestMem, MemFault},
        pageread::{hash_pinned_or_copied, HashSource, PinnedCounts, PinnedHasher, PINNED_MAX},
        provider::{tracker_update, Provider, ShadowEvent},
        writeset::{
            scan::{CtxSlot, CONTEXT_SLOTS},
            WriteSink,
        },
    },
    migration::pin::{hash_page, InPlaceCounts, InPlaceSource},
    migration::{Locked, MigDevice, Migration},
};

/// kvmgt's `struct intel_vgpu` (opaque).
#[repr(C)]
pub(crate) struct IntelVgpu {
    _private: [u8; 0],
}

extern "C" {
    fn gmig_gvt_register() -> c_int;
    fn gmig_gvt_unregister();
    fn gmig_gvt_stop_schedule(vgpu: *mut IntelVgpu);
    fn gmig_gvt_start_schedule(vgpu: *mut IntelVgpu);
    fn gmig_gvt_save_state(vgpu: *mut IntelVgpu, part: u32, buf: *mut c_void, size: usize)
        -> isize;
    fn gmig_gvt_restore_state(
        vgpu: *mut IntelVgpu,
        part: u32,
        buf: *const c_void,
        size: usize,
    ) -> c_int;
    fn gmig_gvt_check_state(
        vgpu: *mut IntelVgpu,
        part: u32,
        buf: *const c_void,
        size: usize,
    ) -> c_int;
    fn gmig_gvt_rw_gpa(
        vgpu: *mut IntelVgpu,
        gpa: u64,
        buf: *mut c_void,
        len: usize,
        write: bool,
    ) -> c_int;
    fn gmig_gvt_save_workloads(vgpu: *mut IntelVgpu, buf: *mut u32, count: u32) -> c_int;
    fn gmig_gvt_resubmit_workloads(vgpu: *mut IntelVgpu, buf: *const u32, count: u32) -> c_int;
    fn gmig_gvt_can_read_pinned() -> bool;
    fn gmig_gvt_read_pinned(
        vgpu: *mut IntelVgpu,
        gfn: u64,
        count: u32,
        f: unsafe extern "C" fn(data: *mut c_void, index: c_uint, page: *mut bindings::page),
        data: *mut c_void,
    ) -> c_int;
}

/// Counters over all GVT-g vGPUs (debugfs `gmig/gvt`).
struct Counters {
    vgpus: AtomicU64,
    workloads_queued: AtomicU64,
    workloads_completed: AtomicU64,
    workloads_failed: AtomicU64,
    sched_stops: AtomicU64,
    sched_starts: AtomicU64,
    ggtt_writes: AtomicU64,
    ggtt_foreign: AtomicU64,
    ppgtt_shadows: AtomicU64,
    pins: AtomicU64,
    unpins: AtomicU64,
    pages_reported: AtomicU64,
    addrs_patched: AtomicU64,
    cmds_refused: AtomicU64,
    pins_untracked: AtomicU64,
    workloads_saved: AtomicU64,
    workloads_resubmitted: AtomicU64,
    gmas_mapped: AtomicU64,
    gmas_refused: AtomicU64,
    gpas_written: AtomicU64,
    ppgtt_entries: AtomicU64,
    scans: AtomicU64,
    scan_record_overflows: AtomicU64,
}

static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Fault injection (debugfs `gmig/gvt`, `fail_pin_records N`): the next N
/// pin records fail as if memory were short, so that tests reach the path
/// of a pin gmig could not record.
static FAIL_PIN_RECORDS: AtomicU64 = AtomicU64::new(0);

/// debugfs `gmig/gvt` write: `fail_pin_records N`.
pub(crate) fn write_control(reader: &mut UserSliceReader) -> Result {
    let n = crate::debugfs_knob(reader, "fail_pin_records")?;
    FAIL_PIN_RECORDS.store(n, Ordering::Relaxed);
    Ok(())
}

static COUNTERS: Counters = Counters {
    vgpus: AtomicU64::new(0),
    workloads_queued: AtomicU64::new(0),
    workloads_completed: AtomicU64::new(0),
    workloads_failed: AtomicU64::new(0),
    sched_stops: AtomicU64::new(0),
    sched_starts: AtomicU64::new(0),
    ggtt_writes: AtomicU64::new(0),
    ggtt_foreign: AtomicU64::new(0),
    ppgtt_shadows: AtomicU64::new(0),
    pins: AtomicU64::new(0),
    unpins: AtomicU64::new(0),
    pages_reported: AtomicU64::new(0),
    addrs_patched: AtomicU64::new(0),
    cmds_refused: AtomicU64::new(0),
    pins_untracked: AtomicU64::new(0),
    workloads_saved: AtomicU64::new(0),
    workloads_resubmitted: AtomicU64::new(0),
    gmas_mapped: AtomicU64::new(0),
    gmas_refused: AtomicU64::new(0),
    gpas_written: AtomicU64::new(0),
    ppgtt_entries: AtomicU64::new(0),
    scans: AtomicU64::new(0),
    scan_record_overflows: AtomicU64::new(0),
};

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Content of debugfs `gmig/gvt`.
pub(crate) struct Status;

impl core::fmt::Debug for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = &COUNTERS;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let state = if REGISTERED.load(Ordering::Relaxed) {
            "registered"
        } else {
            "unavailable"
        };
        writeln!(f, "kvmgt: {state}")?;
        writeln!(f, "interface_version: {COMPANION_VERSION}")?;
        writeln!(f, "vgpus: {}", r(&c.vgpus))?;
        writeln!(f, "workloads_queued: {}", r(&c.workloads_queued))?;
        writeln!(f, "workloads_completed: {}", r(&c.workloads_completed))?;
        writeln!(f, "workloads_failed: {}", r(&c.workloads_failed))?;
        writeln!(f, "sched_stops: {}", r(&c.sched_stops))?;
        writeln!(f, "sched_starts: {}", r(&c.sched_starts))?;
        writeln!(f, "ggtt_writes: {}", r(&c.ggtt_writes))?;
        writeln!(f, "ggtt_foreign: {}", r(&c.ggtt_foreign))?;
        writeln!(f, "ppgtt_shadows: {}", r(&c.ppgtt_shadows))?;
        writeln!(f, "pins: {}", r(&c.pins))?;
        writeln!(f, "unpins: {}", r(&c.unpins))?;
        writeln!(f, "pages_reported: {}", r(&c.pages_reported))?;
        writeln!(f, "addrs_patched: {}", r(&c.addrs_patched))?;
        writeln!(f, "cmds_refused: {}", r(&c.cmds_refused))?;
        writeln!(f, "pins_untracked: {}", r(&c.pins_untracked))?;
        writeln!(f, "workloads_saved: {}", r(&c.workloads_saved))?;
        writeln!(f, "workloads_resubmitted: {}", r(&c.workloads_resubmitted))?;
        writeln!(f, "gmas_mapped: {}", r(&c.gmas_mapped))?;
        writeln!(f, "gmas_refused: {}", r(&c.gmas_refused))?;
        writeln!(f, "gpas_written: {}", r(&c.gpas_written))?;
        writeln!(f, "ppgtt_entries: {}", r(&c.ppgtt_entries))?;
        writeln!(f, "scans: {}", r(&c.scans))?;
        writeln!(f, "scan_record_overflows: {}", r(&c.scan_record_overflows))
    }
}

/// gmig's registration with kvmgt; dropping it unregisters.
///
/// # Invariants
///
/// `registered` is true iff `gmig_gvt_register()` succeeded and
/// `gmig_gvt_unregister()` has not been called since.
pub(crate) struct Registration {
    registered: bool,
}

impl Registration {
    /// Registers with kvmgt if its companion interface is loaded; says in
    /// the kernel log which providers run. Never fails: without kvmgt,
    /// gmig runs the sim provider only.
    pub(crate) fn new() -> Self {
        // SAFETY: no preconditions; undone in `drop()` if it succeeded.
        let r = to_result(unsafe { gmig_gvt_register() });
        match r {
            // SAFETY: no preconditions (a symbol looked up at registration).
            Ok(()) if !unsafe { gmig_gvt_can_read_pinned() } => pr_info!(
                "gvt provider registered with kvmgt (no intel_gvt_companion_read_pinned(): guest pages are hashed through copies)\n"
            ),
            Ok(()) => pr_info!("gvt provider registered with kvmgt\n"),
            Err(e) if e == ENOENT => pr_info!(
                "gvt provider not available (no kvmgt with the companion interface loaded); sim provider only\n"
            ),
            Err(e) => pr_warn!("kvmgt refused the gvt provider ({:?}); sim provider only\n", e),
        }
        REGISTERED.store(r.is_ok(), Ordering::Relaxed);
        // INVARIANT: set from the result of `gmig_gvt_register()`.
        Self {
            registered: r.is_ok(),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.registered {
            REGISTERED.store(false, Ordering::Relaxed);
            // SAFETY: registered (type invariant), and only once: `self`
            // is dropped once. No vGPU is attached any more: each one
            // holds a reference on this module, so it is not unloading.
            unsafe { gmig_gvt_unregister() };
            pr_info!("gvt provider unregistered from kvmgt\n");
        }
    }
}

/// kvmgt's vGPU, as the provider calls kvmgt's services on it.
///
/// # Invariants
///
/// The pointee is a live vGPU attached to gmig: kvmgt destroys it only
/// after `vgpu_destroy()`, which drops the [`GvtDev`] holding this.
#[derive(Clone, Copy)]
struct VgpuPtr(*mut IntelVgpu);

// SAFETY: kvmgt's services take the vGPU's own locks; the pointer is only
// passed to them.
unsafe impl Send for VgpuPtr {}
// SAFETY: see `Send`.
unsafe impl Sync for VgpuPtr {}

/// Whether the u64 values of `part` travel as little-endian (the others
/// are byte images).
fn u64_part(part: Part) -> bool {
    matches!(part, Part::Ggtt | Part::Fences)
}

impl VgpuPtr {
    fn stop_schedule(self) {
        // SAFETY: live vGPU (type invariant).
        unsafe { gmig_gvt_stop_schedule(self.0) }
    }

    fn start_schedule(self) {
        // SAFETY: live vGPU (type invariant).
        unsafe { gmig_gvt_start_schedule(self.0) }
    }

    /// kvmgt saves into an aligned buffer of u64s; `out` gets its bytes.
    fn save(self, part: Part, out: &mut [u8]) -> Result {
        // kvmgt's layout is the image's on a little-endian host: an
        // aligned `out` takes the bytes directly, without a buffer
        // allocated and copied in the downtime (a patched final image
        // hands over its scratch, which is aligned).
        if cfg!(target_endian = "little") && out.as_ptr().align_offset(8) == 0 && out.len() % 8 == 0
        {
            // SAFETY: live vGPU (type invariant); `out` holds `out.len()`
            // writable bytes, 8-aligned as kvmgt's u64s need.
            let n = unsafe {
                gmig_gvt_save_state(self.0, part as u32, out.as_mut_ptr().cast(), out.len())
            };
            return match usize::try_from(n) {
                Ok(n) if n == out.len() => Ok(()),
                _ => Err(EIO),
            };
        }
        let mut tmp = KVVec::from_elem(0u64, out.len().div_ceil(8), GFP_KERNEL_ACCOUNT)?;
        self.save_raw(part, &mut tmp, out.len())?;
        for (c, v) in out.chunks_mut(8).zip(tmp.iter()) {
            let b = if u64_part(part) {
                v.to_le_bytes()
            } else {
                v.to_ne_bytes()
            };
            c.copy_from_slice(&b[..c.len()]);
        }
        Ok(())
    }

    /// `part` as kvmgt takes it: an aligned buffer of u64s.
    fn part_words(part: Part, data: &[u8]) -> Result<KVVec<u64>> {
        let mut tmp = KVVec::from_elem(0u64, data.len().div_ceil(8), GFP_KERNEL_ACCOUNT)?;
        for (v, c) in tmp.iter_mut().zip(data.chunks(8)) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            *v = if u64_part(part) {
                u64::from_le_bytes(b)
            } else {
                u64::from_ne_bytes(b)
            };
        }
        Ok(tmp)
    }

    fn restore(self, part: Part, data: &[u8]) -> Result {
        let tmp = Self::part_words(part, data)?;
        // SAFETY: live vGPU (type invariant); `tmp` holds `data.len()`
        // readable bytes.
        to_result(unsafe {
            gmig_gvt_restore_state(self.0, part as u32, tmp.as_ptr().cast(), data.len())
        })
    }

    /// Whether kvmgt would restore `data` to `part` (it changes nothing).
    fn check(self, part: Part, data: &[u8]) -> Result {
        let tmp = Self::part_words(part, data)?;
        // SAFETY: live vGPU (type invariant); `tmp` holds `data.len()`
        // readable bytes.
        to_result(unsafe {
            gmig_gvt_check_state(self.0, part as u32, tmp.as_ptr().cast(), data.len())
        })
    }

    /// kvmgt saves `part`, `len` bytes, into `buf` (its u64s as kvmgt
    /// lays them out in memory), which must hold them.
    fn save_raw(self, part: Part, buf: &mut [u64], len: usize) -> Result {
        if buf.len() < len.div_ceil(8) {
            return Err(EINVAL);
        }
        // SAFETY: live vGPU (type invariant); `buf` holds at least `len`
        // writable bytes (checked above).
        let n = unsafe { gmig_gvt_save_state(self.0, part as u32, buf.as_mut_ptr().cast(), len) };
        if usize::try_from(n).ok() != Some(len) {
            return Err(EIO);
        }
        Ok(())
    }

    /// How many workloads kvmgt has queued and not run.
    fn pending_count(self) -> Result<usize> {
        // SAFETY: live vGPU (type invariant); a NULL buffer of no room
        // asks for the number only.
        let n = unsafe { gmig_gvt_save_workloads(self.0, core::ptr::null_mut(), 0) };
        usize::try_from(n).map_err(|_| EIO)
    }

    /// Saves the pending workloads into `out` (little-endian records,
    /// [`WORKLOAD_LEN`] bytes each); fails if their number is not the
    /// records `out` holds.
    fn save_pending(self, out: &mut [u8]) -> Result {
        let n = out.len() / WORKLOAD_LEN;
        if n > MAX_PENDING || n * WORKLOAD_LEN != out.len() {
            return Err(EINVAL);
        }
        let mut words = KVVec::from_elem(0u32, n * WORKLOAD_WORDS, GFP_KERNEL_ACCOUNT)?;
        let count = u32::try_from(n)?;
        // SAFETY: live vGPU (type invariant); `words` holds `count`
        // records of `WORKLOAD_WORDS` dwords (`struct intel_gvt_workload`,
        // the shim checks its size).
        let got = unsafe { gmig_gvt_save_workloads(self.0, words.as_mut_ptr(), count) };
        if u32::try_from(got).ok() != Some(count) {
            return Err(EIO);
        }
        for (c, w) in out
            .chunks_mut(WORKLOAD_LEN)
            .zip(words.chunks(WORKLOAD_WORDS))
        {
            let w: &[u32; WORKLOAD_WORDS] = w.try_into().map_err(|_| EINVAL)?;
            PendingWorkload::from_words(w).encode(c).ok_or(EINVAL)?;
        }
        bump(&COUNTERS.workloads_saved, u64::try_from(n)?);
        Ok(())
    }

    /// Has kvmgt re-create `pending` in their order.
    fn resubmit(self, pending: &PendingList<'_>) -> Result {
        let mut words = KVVec::with_capacity(pending.len() * WORKLOAD_WORDS, GFP_KERNEL_ACCOUNT)?;
        for w in pending.iter() {
            words.extend_from_slice(&w.ok_or(EINVAL)?.to_words(), GFP_KERNEL_ACCOUNT)?;
        }
        let count = u32::try_from(pending.len())?;
        // SAFETY: live vGPU (type invariant); `words` holds `count`
        // records of `WORKLOAD_WORDS` dwords.
        to_result(unsafe { gmig_gvt_resubmit_workloads(self.0, words.as_ptr(), count) })?;
        bump(&COUNTERS.workloads_resubmitted, u64::from(count));
        Ok(())
    }

    /// Hashes, where they are, the frames of `first..first + out.len()`
    /// (at most [`PINNED_MAX`]) that kvmgt holds pinned, each lent for the
    /// time of its hash under kvmgt's DMA cache lock; returns the mask of
    /// those frames, `None` if kvmgt refused the call.
    fn read_pinned(self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64> {
        if out.len() > PINNED_MAX {
            return None;
        }
        let count = u32::try_from(out.len()).ok()?;
        let mut run = LentRun { seed, out, mask: 0 };
        // SAFETY: live vGPU (type invariant); `hash_lent` is called only
        // during the call, with `data` the `run` that outlives it and that
        // nothing else accesses meanwhile.
        let n = unsafe {
            gmig_gvt_read_pinned(
                self.0,
                first,
                count,
                hash_lent,
                (&raw mut run).cast::<c_void>(),
            )
        };
        (n >= 0).then_some(run.mask)
    }

    fn rw_gpa(self, gpa: u64, buf: *mut u8, len: usize, write: bool) -> Result {
        // SAFETY: live vGPU (type invariant); the callers pass a buffer
        // valid for `len` bytes (read only when `write`).
        to_result(unsafe { gmig_gvt_rw_gpa(self.0, gpa, buf.cast(), len, write) })
    }
}

/// How long a stop lets a flooded workload queue drain, at most (in the
/// device downtime: only a guest that flooded the ELSP pays it).
const DRAIN_MS: i64 = 1000;

/// Most ranges queued between two syncs ([`Hooks::reached`]).
const MAX_REACHABLE: usize = 4096;

/// Most frame ranges the scanned commands and kvmgt's writes record
/// between two syncs, and the carry-over of earlier reports (16 bytes
/// each, two records of 64 KiB per vGPU); past it, a report re-hashes
/// every tracked page. iris's buffers lie scattered in guest memory: the
/// replayed glmark2 overflowed 1024 ranges in 16 reports of a migration.
const MAX_SCAN_RANGES: usize = 4096;

/// Most frame ranges kvmgt's own writes outside workloads (the OpRegion
/// mailbox) record between two syncs; past it, the migration fails (those
/// frames need not be tracked, so no unbounded report covers them).
const MAX_OUTSIDE_RANGES: usize = 64;

/// What the hooks learn of the GPU's and kvmgt's writes.
type Writes = GvtWrites<KVVec<(u64, u64)>, KVVec<u32>, KVVec<CtxSlot>>;

/// The hooks' record of writes for a vGPU of `layout`: the guest GGTT
/// mirror (every entry unknown), room for [`MAX_SCAN_RANGES`] ranges and
/// [`MAX_OUTSIDE_RANGES`] of kvmgt's writes outside workloads, and the
/// pipeline state of [`CONTEXT_SLOTS`] contexts.
fn new_writes(layout: GvtLayout) -> Result<Writes> {
    let mirror = GgttMirror::new(
        layout,
        KVVec::from_elem(0u32, usize::try_from(layout.entries())?, GFP_KERNEL)?,
    )
    .ok_or(EINVAL)?;
    Ok(GvtWrites::new(
        KVVec::from_elem((0u64, 0u64), MAX_SCAN_RANGES, GFP_KERNEL)?,
        KVVec::from_elem((0u64, 0u64), MAX_OUTSIDE_RANGES, GFP_KERNEL)?,
        mirror,
    )
    .with_carry(KVVec::from_elem((0u64, 0u64), MAX_SCAN_RANGES, GFP_KERNEL)?)
    .with_contexts(KVVec::from_elem(CtxSlot::EMPTY, CONTEXT_SLOTS, GFP_KERNEL)?))
}

/// The dword at byte offset `off` of a register image kvmgt saved into
/// u64s (native byte order, as it lies in kvmgt's memory).
fn reg_at(regs: &[u64], off: usize) -> Option<u32> {
    let v = regs.get(off / 8)?.to_ne_bytes();
    let i = off % 8;
    let b = v.get(i..i.checked_add(4)?)?;
    Some(u32::from_ne_bytes(b.try_into().ok()?))
}

/// What the kvmgt hooks record for one vGPU (their own lock).
struct Hooks {
    /// Guest frame ranges pinned for the GPU now: first frame -> pages.
    pinned: RBTree<u64, u64>,
    /// Address translation of the command scanner hook.
    audit: AuditMap,
    /// Dirty logging runs: frames that become reachable are queued.
    logging: bool,
    /// Frame ranges that became GPU-reachable since the last sync.
    reachable: KVVec<(u64, u64)>,
    /// `reachable` could not grow: the next sync re-reports every pin.
    overflow: bool,
    /// What the scanned commands and kvmgt may have written, and the
    /// guest's GGTT they are translated through (2 KiB: boxed, so that
    /// the creation path does not carry copies of it on its stack).
    writes: KBox<Writes>,
    /// Pins that could not be recorded and are not unpinned yet: their
    /// frames are missing from [`Hooks::pinned`], so no dirty logging may
    /// start (its first report would miss them) until they are unpinned.
    pins_lost: u64,
}

impl Hooks {
    /// Queues a range that became GPU-reachable while logging. The queue
    /// is bounded (a guest rewriting its GGTT between two reports must not
    /// grow kernel memory): past [`MAX_REACHABLE`] entries the next sync
    /// re-reports every pin instead, which covers every queued range.
    fn reached(&mut self, first: u64, count: u64) {
        if !self.logging || self.overflow {
            return;
        }
        if self.reachable.len() >= MAX_REACHABLE
            || self
                .reachable
                .push((first, count), GFP_KERNEL_ACCOUNT)
                .is_err()
        {
            self.overflow = true;
            self.reachable.clear();
        }
    }
}

/// kvmgt's services and the hooks' record: what [`GvtVgpu`] runs on.
pub(crate) struct Host {
    vgpu: VgpuPtr,
    hooks: Arc<Mutex<Hooks>>,
}

impl StateSource for Host {
    fn save(&self, part: Part, out: &mut [u8]) -> bool {
        self.vgpu.save(part, out).is_ok()
    }

    /// More than an image holds fails the save ([`gvt::write_image`]).
    fn pending_count(&self) -> usize {
        self.vgpu.pending_count().unwrap_or(usize::MAX)
    }

    fn save_pending(&self, out: &mut [u8]) -> bool {
        self.vgpu.save_pending(out).is_ok()
    }
}

impl GvtHost for Host {
    fn stop_schedule(&mut self) {
        self.vgpu.stop_schedule();
    }

    fn start_schedule(&mut self) {
        self.vgpu.start_schedule();
    }

    /// kvmgt checks the fence ranges through `map_gma`: the hooks answer
    /// with `map` for the length of the check.
    fn check(&mut self, part: Part, data: &[u8], map: &AuditMap) -> bool {
        let old = core::mem::replace(&mut self.hooks.lock().audit, *map);
        let ok = self.vgpu.check(part, data).is_ok();
        self.hooks.lock().audit = old;
        ok
    }

    /// Polls kvmgt's count every millisecond, for [`DRAIN_MS`] at most
    /// (a guest flooded the ELSP; its vCPUs are stopped). kvmgt's
    /// scheduler thread runs the workloads; none of its hooks needs the
    /// migration's vGPU lock, which the caller holds.
    fn wait_pending(&mut self, cap: usize) -> usize {
        let start = Instant::<Monotonic>::now();
        loop {
            let Ok(n) = self.vgpu.pending_count() else {
                return usize::MAX;
            };
            if n <= cap || start.elapsed().as_millis() >= DRAIN_MS {
                return n;
            }
            fsleep(Delta::from_millis(1));
        }
    }

    fn restore(&mut self, part: Part, data: &[u8]) -> bool {
        let ok = self.vgpu.restore(part, data).is_ok();
        if ok && part == Part::Ggtt {
            self.hooks.lock().writes.restored(data);
        }
        ok
    }

    fn vgpu_reset(&mut self) {
        self.hooks.lock().writes.reset();
    }

    fn for_each_pinned(&self, f: &mut dyn FnMut(u64, u64)) {
        for (gfn, pages) in self.hooks.lock().pinned.iter() {
            f(*gfn, *pages);
        }
    }

    fn set_audit(&mut self, map: AuditMap) {
        self.hooks.lock().audit = map;
    }

    fn resubmit(&mut self, pending: &PendingList<'_>) -> bool {
        self.vgpu.resubmit(pending).is_ok()
    }
}

/// What kvmgt's callbacks of one `read_pinned` call fill.
struct LentRun<'a> {
    seed: u64,
    /// The run's hashes, at most [`PINNED_MAX`].
    out: &'a mut [Option<u64>],
    /// Bit `i`: `out[i]` was hashed in place.
    mask: u64,
}

/// kvmgt lends the page of frame `index` of a `read_pinned` run: hashes it
/// where it is ([`hash_page`]: volatile 8-byte reads, no `&[u8]` over
/// memory the guest may be writing). Takes no lock.
///
/// # Safety
///
/// `data` is the [`LentRun`] of the `read_pinned` call in progress, which
/// nothing else accesses during this call; `page` is NULL or a page kvmgt
/// holds pinned until this returns (under its DMA cache lock).
unsafe extern "C" fn hash_lent(data: *mut c_void, index: c_uint, page: *mut bindings::page) {
    // SAFETY: `data` is the call's `LentRun`, exclusively ours for now
    // (the function's contract).
    let run = unsafe { &mut *data.cast::<LentRun<'_>>() };
    let (Some(page), Ok(i)) = (NonNull::new(page), usize::try_from(index)) else {
        return;
    };
    // A frame past the run is none of ours: ignored. `i` < 64 then.
    let Some(o) = run.out.get_mut(i) else {
        return;
    };
    // SAFETY: kvmgt holds the page pinned until this returns (the
    // function's contract), and the borrow ends before.
    let page = unsafe { BorrowedPage::from_raw(page) };
    *o = Some(hash_page(run.seed, &page));
    run.mask |= 1 << i;
}

/// kvmgt as the holder of the pins of one vGPU.
struct Holder(VgpuPtr);

impl PinnedHasher for Holder {
    fn hash_pinned(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64> {
        self.0.read_pinned(seed, first, out)
    }
}

/// GVT-g's in-place source of one scan (`hashing=inplace`): the pages
/// kvmgt holds pinned are lent and hashed where they are, the others
/// copied with `rw_gpa` ([`hash_pinned_or_copied`]).
pub(crate) struct Lent {
    vgpu: VgpuPtr,
    counts: PinnedCounts,
}

impl InPlaceSource for Lent {
    fn hash_run(
        &mut self,
        seed: u64,
        first: u64,
        out: &mut [Option<u64>],
        copy: &mut dyn HashSource,
    ) {
        // `rw_gpa` (`vfio_dma_rw()`) stays the only correct way to read a
        // frame kvmgt does not hold pinned: gmig pinning it itself would
        // add pins that kvmgt's `dma_unmap` callback does not know to
        // drop, and type1 `BUG()`s when an unmap keeps finding pins.
        hash_pinned_or_copied(
            &mut Holder(self.vgpu),
            copy,
            &mut self.counts,
            seed,
            first,
            out,
        );
    }

    fn counts(&self) -> InPlaceCounts {
        InPlaceCounts {
            runs: self.counts.calls,
            pages: self.counts.pages,
            copied: 0,
            unpinned: self.counts.copied,
        }
    }

    /// Lanes share nothing of gmig's: each lane's `read_pinned` call takes
    /// kvmgt's `cache_lock` for its own run, so the lent pages of several
    /// lanes are hashed one call after the other (only their `rw_gpa`
    /// copies overlap), and a lane that is a work item holds no lock when
    /// it takes `cache_lock`, while the caller it works for holds `inner`
    /// and waits: the order stays `inner` -> `cache_lock` (see the
    /// module's lock order).
    fn for_lane(&self, _lane: usize) -> Self {
        Self {
            vgpu: self.vgpu,
            counts: PinnedCounts::default(),
        }
    }
}

/// Guest memory of a GVT-g vGPU (kvmgt's VFIO DMA path).
///
/// `rw_gpa` (`vfio_dma_rw()`) stays the only correct way here: the scanner
/// hook reads page tables and pipeline state from inside kvmgt's
/// `scan_cmd` callback, where the interface allows no call into GVT-g but
/// `rw_gpa` (`read_pinned` would take `cache_lock`, which kvmgt may hold
/// around its pin hooks), reads of a few bytes that need no page lent, and
/// a restore writes guest memory, which `read_pinned` never lends a page
/// for.
pub(crate) struct GvtMem(VgpuPtr);

impl GuestMem for GvtMem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.0
            .rw_gpa(gpa, buf.as_mut_ptr(), buf.len(), false)
            .map_err(|_| MemFault { gpa })
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        self.0
            .rw_gpa(gpa, buf.as_ptr().cast_mut(), buf.len(), true)
            .map_err(|_| MemFault { gpa })
    }
}

/// The vGPU lock of a GVT-g vGPU and what it protects.
type InnerLock = Arc<Mutex<GvtInner>>;

/// What [`GvtDev::inner`] protects.
struct GvtInner {
    prov: GvtVgpu<Host>,
    mig: Migration,
}

impl GvtInner {
    /// debugfs `gmig/gvt-vgpu<id>/stats`: one `key: value` per line.
    fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let l = self.prov.layout();
        writeln!(f, "type: gvt-g")?;
        writeln!(f, "aperture_base: {:#x}", l.aperture.base)?;
        writeln!(f, "aperture_size: {:#x}", l.aperture.size)?;
        writeln!(f, "hidden_base: {:#x}", l.hidden.base)?;
        writeln!(f, "hidden_size: {:#x}", l.hidden.size)?;
        writeln!(f, "fences: {}", l.fences)?;
        writeln!(f, "quiesced: {}", u8::from(self.prov.is_quiesced()))?;
        self.mig.show_stats(f)
    }
}

/// gmig's object for one GVT-g vGPU (`struct gmig_gvt_vgpu` in the shim).
pub(crate) struct GvtDev {
    // Dropped in declaration order: the file before its directory.
    _stats: Option<Pin<KBox<File<InnerLock>>>>,
    _dir: Option<Dir>,
    vgpu: VgpuPtr,
    dev: ARef<Device>,
    /// kvmgt's vGPU id, for messages.
    id: u32,
    layout: GvtLayout,
    /// The migration's vGPU lock.
    inner: InnerLock,
    /// The hooks' record.
    hooks: Arc<Mutex<Hooks>>,
    /// The vGPU's register image, for the HWS_PGA registers at a report
    /// (allocated while dirty logging runs).
    status_regs: Arc<Mutex<KVVec<u64>>>,
    /// Bytes of the register image.
    vregs_size: usize,
    /// Commands the scanner hook refused (logged at powers of two: the
    /// guest controls how many).
    refused: AtomicU64,
}

/// The GVT-g vGPU object behind a pointer the shim holds, borrowed for the
/// length of one call from C.
///
/// # Safety
///
/// `rs` came from `gmig_rs_gvt_vgpu_create()`, and
/// `gmig_rs_gvt_vgpu_destroy()` does not run before `'a` ends (kvmgt
/// destroys a vGPU after its last callback and VFIO operation returned).
pub(crate) unsafe fn device_ref<'a>(rs: *mut c_void) -> &'a GvtDev {
    // SAFETY: `rs` came from `into_foreign()` in `gmig_rs_gvt_vgpu_create()`
    // and `from_foreign()` comes after `'a` (the function's contract).
    unsafe { <KBox<GvtDev> as ForeignOwnable>::borrow(rs) }
}

impl MigDevice for GvtDev {
    type Prov = GvtVgpu<Host>;
    type Mem<'a> = GvtMem;
    type InPlace<'a> = Lent;

    fn dev(&self) -> &Device {
        &self.dev
    }

    fn with_locked<R>(&self, f: impl FnOnce(&mut Locked<'_, Self::Prov>) -> R) -> R {
        let mut guard = self.inner.lock();
        let GvtInner { prov, mig } = &mut *guard;
        // kvmgt's vfio_device is open whenever its ops are called.
        f(&mut Locked {
            prov,
            mig,
            open: true,
        })
    }

    /// The copy path: every page with `hashing=copy` or a kvmgt without
    /// `read_pinned`, else the frames kvmgt does not hold pinned ([`Lent`]).
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result {
        self.vgpu.rw_gpa(gpa, buf.as_mut_ptr(), buf.len(), false)
    }

    fn mem(&self) -> GvtMem {
        GvtMem(self.vgpu)
    }

    /// kvmgt lends the pages it holds pinned, if it can (patch 0021).
    fn in_place(&self, _open: bool) -> Option<Lent> {
        // SAFETY: no preconditions (a symbol looked up at registration).
        unsafe { gmig_gvt_can_read_pinned() }.then_some(Lent {
            vgpu: self.vgpu,
            counts: PinnedCounts::default(),
        })
    }

    fn sync(&self, mig: &mut Migration) {
        let mut h = self.hooks.lock();
        for &(gfn, pages) in h.reachable.iter() {
            mig.shadow_event(ShadowEvent::Pinned { gfn, pages });
        }
        h.reachable.clear();
        if core::mem::take(&mut h.overflow) {
            if h.pins_lost > 0 {
                // A pin queued only in the overflowed queue is lost.
                mig.writable_frames_lost();
            }
            for (gfn, pages) in h.pinned.iter() {
                mig.shadow_event(ShadowEvent::Pinned {
                    gfn: *gfn,
                    pages: *pages,
                });
            }
        }
        // What the scanned commands and kvmgt may have written; the status
        // pages need the registers, read without `hooks` (kvmgt takes its
        // `vgpu_lock`), translated with it.
        let due = h.writes.status_due();
        let audit = h.audit;
        drop(h);
        let regs = if due { self.read_regs() } else { None };
        if due && regs.is_none() {
            mig.unbounded();
        }
        // The registers hold the guest's view: kvmgt writes the page the
        // HWS_PGA register names moved through `map_gma` (`gvt::status_page`).
        let reg = |off: usize| {
            regs.as_deref()
                .and_then(|r| reg_at(r, off))
                .map(|v| gvt::status_page(v, &audit))
        };
        let reg: Option<&dyn Fn(usize) -> Option<u32>> =
            if regs.is_some() { Some(&reg) } else { None };
        let mut h = self.hooks.lock();
        let before = h.writes.overflows();
        let kept = h.writes.sync(reg, mig);
        bump(
            &COUNTERS.scan_record_overflows,
            h.writes.overflows() - before,
        );
        drop(h);
        if !kept {
            // Frames kvmgt wrote outside workloads, perhaps untracked: no
            // report of this migration can be complete.
            dev_ratelimited!(
                dev_err,
                &self.dev,
                "gvt: vGPU {}: kvmgt wrote guest memory in more than {} places outside workloads between two reports: failing the migration\n",
                self.id,
                MAX_OUTSIDE_RANGES
            );
            mig.writable_frames_lost();
        }
    }

    fn logging_start(&self) -> Result {
        let h = self.hooks.lock();
        // Checked and set under one hold of `hooks`: a pin lost between the
        // two would be missed.
        if h.pins_lost > 0 {
            dev_err!(
                self.dev,
                "gvt: vGPU {}: {} pinned ranges have no record: dirty logging refused (it would miss their pages)\n",
                self.id,
                h.pins_lost
            );
            return Err(ENOMEM);
        }
        self.set_logging(h, true);
        Ok(())
    }

    fn logging_stop(&self) {
        self.set_logging(self.hooks.lock(), false);
    }

    // TODO: kvmgt's GGTT write hook is not called for a partial (4-byte)
    // entry update (patches/gvt 0004: `if (!partial_update)`), which
    // changes the guest entry the image saves, so `ggtt_writes_seen()`
    // keeps its default (a stop-copy delta compares every GGTT entry)
    // until the hook reports those too and its indices reach the
    // migration through `sync()`.

    /// GVT-g's command scanner translates (the audit map the restore set).
    fn restored_elsewhere(&self, src: u64, dst: u64, _remapped: u64) {
        dev_ratelimited!(
            dev_info,
            &self.dev,
            "restored from GGTT base {:#x} at {:#x}: GVT-g's command scanner moves the graphics addresses of resubmitted workloads\n",
            src,
            dst
        );
    }
}

impl GvtDev {
    /// Dirty logging on or off, with `hooks` held by the caller: what the
    /// hooks queued for an earlier migration is dropped, and the register
    /// image for the status pages is allocated (without it, the reports
    /// after a workload re-hash every tracked page, `sync()`) or freed.
    fn set_logging(&self, mut h: MutexGuard<'_, Hooks>, on: bool) {
        h.logging = on;
        h.reachable = KVVec::new();
        h.overflow = false;
        h.writes.forget_kvmgt_writes();
        drop(h);
        let mut regs = self.status_regs.lock();
        // The VMM's memory (DMA_LOGGING_START), freed before it is
        // allocated again.
        *regs = KVVec::new();
        if on {
            *regs = KVVec::from_elem(0u64, self.vregs_size.div_ceil(8), GFP_KERNEL_ACCOUNT)
                .unwrap_or(KVVec::new());
        }
    }

    /// The vGPU's register image, read into [`GvtDev::status_regs`]; `None`
    /// if dirty logging allocated none or kvmgt refused.
    fn read_regs(&self) -> Option<MutexGuard<'_, KVVec<u64>>> {
        let mut regs = self.status_regs.lock();
        if regs.is_empty() {
            return None;
        }
        self.vgpu
            .save_raw(Part::Vregs, &mut regs, self.vregs_size)
            .ok()?;
        Some(regs)
    }

    fn event(&self, kind: u32, a: u64, b: u64, c: u64) {
        let n = &COUNTERS;
        let Ok(kind) = EventKind::try_from(kind) else {
            dev_ratelimited!(
                dev_warn,
                &self.dev,
                "gvt: vGPU {}: unknown event {}\n",
                self.id,
                kind
            );
            return;
        };
        let mut h = self.hooks.lock();
        match kind {
            EventKind::WorkloadQueued => {
                bump(&n.workloads_queued, 1);
                h.writes.queued(a);
            }
            EventKind::WorkloadCompleted => {
                bump(&n.workloads_completed, 1);
                // `c` is the C int status, sign-extended: -ECANCELED for
                // a workload GVT-g dropped unrun (patches/gvt 0017).
                if c != 0 {
                    bump(&n.workloads_failed, 1);
                }
                // `b` is the LRCA: kvmgt wrote the context image back if
                // the workload succeeded.
                h.writes.completed(a, b, c == 0);
            }
            EventKind::SchedStopped => bump(&n.sched_stops, 1),
            EventKind::SchedStarted => bump(&n.sched_starts, 1),
            EventKind::GgttWrite => {
                bump(&n.ggtt_writes, 1);
                h.writes.ggtt_write(a, c);
                match gvt::ggtt_write_event(&self.layout, a, b, c) {
                    Some(ev) => {
                        if let Some(r) = tracker_update(&ev) {
                            bump(&n.pages_reported, r.count);
                            h.reached(r.first, r.count);
                        }
                    }
                    None => bump(&n.ggtt_foreign, 1),
                }
            }
            EventKind::PpgttCreated => bump(&n.ppgtt_shadows, 1),
            EventKind::PpgttDestroyed => {
                h.writes.ppgtt_destroyed(a);
                n.ppgtt_shadows
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                    .ok();
            }
            EventKind::PagesPinned => {
                bump(&n.pins, 1);
                let Some(ev) = gvt::pin_event(a, b, true) else {
                    return;
                };
                let Some(r) = tracker_update(&ev) else {
                    return;
                };
                bump(&n.pages_reported, r.count);
                let injected = FAIL_PIN_RECORDS
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                    .is_ok();
                if injected
                    || h.pinned
                        .try_create_and_insert(r.first, r.count, GFP_KERNEL)
                        .is_err()
                {
                    bump(&n.pins_untracked, 1);
                    h.pins_lost += 1;
                    dev_ratelimited!(
                        dev_err,
                        &self.dev,
                        "gvt: vGPU {}: no memory to record the pin of frame {:#x}: its migrations fail until the frame is unpinned\n",
                        self.id,
                        r.first
                    );
                }
                // A migration already logging has it queued (or, if the
                // queue overflowed, fails at its next report: `sync()`).
                h.reached(r.first, r.count);
            }
            EventKind::PpgttEntry => {
                bump(&n.ppgtt_entries, 1);
                h.writes
                    .ppgtt_entry(u32::try_from(a).unwrap_or(u32::MAX), b);
            }
            EventKind::ScanWorkload => {
                bump(&n.scans, 1);
                // `b` is the LRCA, `c` the PML4 of a 4-level PPGTT or 0.
                h.writes.scan_workload(a, b, (c != 0).then_some(c));
            }
            EventKind::GpaWritten => {
                bump(&n.gpas_written, 1);
                // Before logging starts, the VMM's first pass over guest
                // memory (which follows the start) has it.
                if h.logging {
                    h.writes.kvmgt_wrote(a, b);
                }
            }
            EventKind::PagesUnpinned => {
                bump(&n.unpins, 1);
                // A page that stops being reachable stays tracked while
                // logging (its last content is compared at stop-copy).
                // A pin gmig has no record of is one it could not record:
                // kvmgt unpins what it pinned, with the same frame and size
                // (drivers/gpu/drm/i915/gvt/kvmgt.c, __gvt_cache_remove_entry
                // of 7.3, where the series calls the hook).
                if h.pinned.remove(&a).is_none() {
                    h.pins_lost = h.pins_lost.saturating_sub(1);
                }
            }
        }
    }
}

/// kvmgt created a vGPU: returns gmig's object for it, or NULL (kvmgt then
/// fails the creation) if its layout is invalid or memory is short.
///
/// # Safety
///
/// `vgpu` is NULL or kvmgt's live `struct intel_vgpu`, and `dev` NULL or its
/// live parent device; both outlive the returned object (kvmgt calls
/// `gmig_rs_gvt_vgpu_destroy()` before it frees them).
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_vgpu_create(
    vgpu: *mut IntelVgpu,
    dev: *mut bindings::device,
    aperture_base: u64,
    aperture_size: u64,
    hidden_base: u64,
    hidden_size: u64,
    fences: u32,
    id: u32,
    vregs_size: usize,
    execlist_size: usize,
) -> *mut c_void {
    // SAFETY: the pointers are NULL or live beyond the object (the
    // function's contract), as `create()` requires.
    let res = unsafe {
        create(
            vgpu,
            dev,
            (aperture_base, aperture_size),
            (hidden_base, hidden_size),
            fences,
            id,
            StateSizes {
                vregs: vregs_size,
                execlist: execlist_size,
            },
        )
    };
    match res {
        Ok(b) => {
            bump(&COUNTERS.vgpus, 1);
            b.into_foreign()
        }
        Err(e) => {
            pr_warn!("gvt: vGPU {id}: not made migratable: {e:?}\n");
            core::ptr::null_mut()
        }
    }
}

/// # Safety
///
/// `vgpu` and `dev` are NULL or live beyond the returned object.
unsafe fn create(
    vgpu: *mut IntelVgpu,
    dev: *mut bindings::device,
    aperture: (u64, u64),
    hidden: (u64, u64),
    fences: u32,
    id: u32,
    sizes: StateSizes,
) -> Result<KBox<GvtDev>> {
    if vgpu.is_null() || dev.is_null() {
        return Err(EINVAL);
    }
    let Some(layout) = GvtLayout::new(aperture, hidden, fences) else {
        pr_warn!(
            "gvt: vGPU {id}: invalid layout (aperture {:#x}+{:#x}, hidden {:#x}+{:#x}, {fences} fences)\n",
            aperture.0,
            aperture.1,
            hidden.0,
            hidden.1
        );
        return Err(EINVAL);
    };
    // SAFETY: `dev` is non-null, the vfio_device's parent device, which
    // kvmgt keeps alive while the vGPU exists (the function's contract);
    // `get_device()` takes a reference.
    let dev = unsafe { Device::get_device(dev) };
    let vgpu = VgpuPtr(vgpu);
    let writes = KBox::new(new_writes(layout)?, GFP_KERNEL)?;
    let hooks = Arc::pin_init(
        new_mutex!(Hooks {
            pinned: RBTree::new(),
            audit: AuditMap::identity(layout),
            logging: false,
            reachable: KVVec::new(),
            overflow: false,
            writes,
            pins_lost: 0,
        }),
        GFP_KERNEL,
    )?;
    let host = Host {
        vgpu,
        hooks: hooks.clone(),
    };
    let prov = GvtVgpu::new(host, layout, sizes, 0).ok_or(EINVAL)?;
    let status_regs = Arc::pin_init(new_mutex!(KVVec::new()), GFP_KERNEL)?;
    let inner = Arc::pin_init(
        new_mutex!(GvtInner {
            prov,
            mig: Migration::new(),
        }),
        GFP_KERNEL,
    )?;
    // Statistics like a sim vGPU's; a vGPU without them still migrates.
    let dir = CString::try_from_fmt(fmt!("gvt-vgpu{id}"))
        .ok()
        .and_then(|name| Some(crate::debugfs_root()?.subdir(&name)));
    let stats = dir.as_ref().and_then(|d| {
        KBox::pin_init(
            d.read_callback_file(c"stats", inner.clone(), &|s: &InnerLock, f| {
                s.lock().show_stats(f)
            }),
            GFP_KERNEL,
        )
        .ok()
    });
    dev_info!(
        dev,
        "gvt: vGPU {id} is migratable (aperture {:#x}+{:#x}, hidden {:#x}+{:#x}, {fences} fences)\n",
        layout.aperture.base,
        layout.aperture.size,
        layout.hidden.base,
        layout.hidden.size
    );
    Ok(KBox::new(
        GvtDev {
            _stats: stats,
            _dir: dir,
            vgpu,
            dev,
            id,
            layout,
            inner,
            hooks,
            status_regs,
            vregs_size: sizes.vregs,
            refused: AtomicU64::new(0),
        },
        GFP_KERNEL,
    )?)
}

/// kvmgt destroys a vGPU.
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not used after this.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_vgpu_destroy(gg: *mut c_void) {
    if gg.is_null() {
        return;
    }
    // SAFETY: `gg` came from `into_foreign()` in
    // `gmig_rs_gvt_vgpu_create()`; ownership returns here once, after every
    // borrow ended (caller contract).
    drop(unsafe { <KBox<GvtDev> as ForeignOwnable>::from_foreign(gg) });
    COUNTERS
        .vgpus
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
        .ok();
}

/// One of kvmgt's reports (`enum gmig_gvt_event`).
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_event(gg: *mut c_void, kind: u32, a: u64, b: u64, c: u64) {
    // SAFETY: `gg` is live for this call (the function's contract).
    unsafe { device_ref(gg) }.event(kind, a, b, c);
}

/// The command scanner hook: rewrites GGTT addresses of the command at
/// `cmd` (`len` dwords of GVT-g's shadow copy, in a buffer in the GGTT if
/// `ggtt`) in place, then records what it may write ([`GvtWrites`]).
/// Returns 0, or -EFAULT to fail the scan.
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not destroyed yet;
/// `cmd` is valid for reads and writes of `len` dwords, and nothing else
/// accesses them during the call.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_scan_cmd(
    gg: *mut c_void,
    cmd: *mut u32,
    len: u32,
    ggtt: bool,
) -> c_int {
    // SAFETY: `gg` is live for this call (the function's contract).
    let g = unsafe { device_ref(gg) };
    let Ok(n) = usize::try_from(len) else {
        return EFAULT.to_errno();
    };
    if cmd.is_null() || n == 0 {
        return EFAULT.to_errno();
    }
    // SAFETY: `cmd` is non-null and valid for `n` dwords of exclusive
    // access for the duration of the call (caller contract).
    let buf = unsafe { core::slice::from_raw_parts_mut(cmd, n) };
    let audit = g.hooks.lock().audit;
    // Under execlists, blits go through the GGTT and 3D state through the
    // context's PPGTT; commands with an explicit bit use it.
    match gvt::patch_command(buf, Mode::EXECLIST, &audit) {
        Ok(k) => {
            bump(
                &COUNTERS.addrs_patched,
                u64::try_from(k).unwrap_or(u64::MAX),
            );
            // The addresses the GPU will use, translated through this
            // vGPU's GGTT or the workload's PPGTT, whose tables and
            // state are read in guest memory now (kvmgt's rw_gpa takes
            // none of GVT-g's locks).
            g.hooks.lock().writes.scanned(buf, ggtt, &mut g.mem());
            0
        }
        Err(e) => {
            bump(&COUNTERS.cmds_refused, 1);
            let k = g.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if k.is_power_of_two() {
                dev_warn!(
                    g.dev,
                    "gvt: vGPU {}: command {:#x} refused after migration: {:?} ({} so far)\n",
                    g.id,
                    buf[0],
                    e,
                    k
                );
            }
            EFAULT.to_errno()
        }
    }
}

/// kvmgt's `map_gma` hook: moves the guest's graphics address at `gma`
/// (`size` bytes, taken from outside a command buffer: a context
/// descriptor, a ring or context buffer start, a GGTT MMIO access) to this
/// vGPU's graphics memory ([`AuditMap::map_guest`]). Returns 0, or
/// -EFAULT if the address is none of the guest's.
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not destroyed yet;
/// `gma` is valid for reads and writes for the duration of the call.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_map_gma(gg: *mut c_void, gma: *mut u64, size: u64) -> c_int {
    // SAFETY: `gg` is live for this call (the function's contract).
    let g = unsafe { device_ref(gg) };
    if gma.is_null() {
        return EFAULT.to_errno();
    }
    // SAFETY: `gma` is non-null and valid for the call (caller contract).
    let from = unsafe { *gma };
    let audit = g.hooks.lock().audit;
    match audit.map_guest(from, size) {
        Ok(to) => {
            if to != from {
                bump(&COUNTERS.gmas_mapped, 1);
                // SAFETY: as above.
                unsafe { *gma = to };
            }
            0
        }
        Err(_) => {
            bump(&COUNTERS.gmas_refused, 1);
            EFAULT.to_errno()
        }
    }
}

#[kunit_tests(gmig_gvt)]
mod tests {
    use super::*;
    use crate::gmig_core::{
        gtt::Pte,
        provider::TrackRange,
        writeset::{words_for, WriteSet},
    };

    const MIB: u64 = 1 << 20;

    /// Guest memory nothing can be read from.
    struct NoMem;

    impl GuestMem for NoMem {
        fn read(&mut self, gpa: u64, _buf: &mut [u8]) -> Result<(), MemFault> {
            Err(MemFault { gpa })
        }

        fn write(&mut self, gpa: u64, _buf: &[u8]) -> Result<(), MemFault> {
            Err(MemFault { gpa })
        }
    }

    fn layouts() -> Result<(GvtLayout, GvtLayout)> {
        let a = GvtLayout::new((32 * MIB, 64 * MIB), (512 * MIB, 384 * MIB), 4).ok_or(EINVAL)?;
        let b = GvtLayout::new((96 * MIB, 64 * MIB), (896 * MIB, 384 * MIB), 4).ok_or(EINVAL)?;
        Ok((a, b))
    }

    #[test]
    fn ggtt_hook_becomes_a_tracker_update() -> Result {
        let (l, _) = layouts()?;
        let pte = Pte::new(0x4242_0000, 0).ok_or(EINVAL)?.encode();
        let ev = gvt::ggtt_write_event(&l, l.hidden.base / 4096, 0, pte).ok_or(EINVAL)?;
        assert_eq!(
            tracker_update(&ev),
            Some(TrackRange {
                first: 0x42420,
                count: 1
            })
        );
        assert!(gvt::ggtt_write_event(&l, 0, 0, pte).is_none());
        Ok(())
    }

    #[test]
    fn register_image_dwords() -> Result {
        let regs = [u64::from_ne_bytes([1, 0, 0, 0, 2, 0, 0, 0])];
        assert_eq!(reg_at(&regs, 0), Some(u32::from_ne_bytes([1, 0, 0, 0])));
        assert_eq!(reg_at(&regs, 4), Some(u32::from_ne_bytes([2, 0, 0, 0])));
        assert_eq!(reg_at(&regs, 8), None);
        Ok(())
    }

    /// The hooks' record as `create()` allocates it, fed as the hooks feed
    /// it: a GGTT store from the ring narrows the report to its frame,
    /// the context image and the render engine's status page; a draw
    /// makes it unbounded.
    #[test]
    fn scanned_store_narrows_the_report() -> Result {
        let (l, _) = layouts()?;
        let mut w = new_writes(l)?;
        let first = l.aperture.base / 4096;
        for i in 0..64 {
            w.ggtt_write(first + i, ((0x100 + i) << 12) | 1);
        }
        let ap = u32::try_from(l.aperture.base)?;
        let sdi = [(0x20 << 23) | (1 << 22) | 2, ap + 3 * 4096, 0, 1];
        w.scanned(&sdi, true, &mut NoMem);
        w.queued(0);
        w.completed(0, l.aperture.base + 32 * 4096, true);
        // The render engine's HWS_PGA (byte 0x2080) at page 60.
        let mut regs = KVVec::from_elem(0u64, 0x2100 / 8, GFP_KERNEL)?;
        let mut hws = [0u8; 8];
        hws[..4].copy_from_slice(&(ap + 60 * 4096).to_ne_bytes());
        *regs.get_mut(0x2080 / 8).ok_or(EINVAL)? = u64::from_ne_bytes(hws);
        let reg = |off: usize| reg_at(&regs, off);
        let mut ws = WriteSet::new(0, 512, KVVec::from_elem(0u64, words_for(512), GFP_KERNEL)?)
            .ok_or(EINVAL)?;
        w.sync(Some(&reg), &mut ws);
        assert!(!ws.is_unbounded());
        assert!(ws.contains(0x103) && ws.contains(0x120) && ws.contains(0x13c));
        assert_eq!(ws.len(), 1 + 22 + 1);
        ws.clear();
        w.scanned(&[0x7b00_0005, 0, 3, 0, 1, 0, 0], true, &mut NoMem);
        w.queued(0);
        w.completed(0, l.aperture.base + 32 * 4096, true);
        w.sync(Some(&reg), &mut ws);
        assert!(ws.is_unbounded());
        Ok(())
    }

    /// kvmgt's OpRegion answers, as `create()` allocates the record: in
    /// the next report, unbounded or not; more places than it holds make
    /// the sync say frames were lost.
    #[test]
    fn kvmgt_writes_outside_workloads_are_reported() -> Result {
        let (l, _) = layouts()?;
        let mut w = new_writes(l)?;
        let mut ws = WriteSet::new(0, 512, KVVec::from_elem(0u64, words_for(512), GFP_KERNEL)?)
            .ok_or(EINVAL)?;
        w.queued(0);
        w.kvmgt_wrote(0x150 * 4096 + 0x200, 4);
        w.kvmgt_wrote(0x150 * 4096 + 0x204, 4);
        assert!(w.sync(None, &mut ws));
        assert!(ws.is_unbounded() && ws.contains(0x150));
        let mut n = 0u64;
        while n <= u64::try_from(MAX_OUTSIDE_RANGES)? {
            w.kvmgt_wrote(2 * n * 4096, 4);
            n += 1;
        }
        assert!(!w.sync(None, &mut ws));
        Ok(())
    }

    /// kvmgt's callback of `read_pinned` hashes the page it is lent as
    /// the copy path hashes the same bytes, and ignores a frame past the
    /// run.
    #[test]
    fn a_lent_page_hashes_as_its_copy() -> Result {
        use crate::gmig_core::hash::page_hash;
        use kernel::page::Page;

        let page = Page::alloc_page(GFP_KERNEL)?;
        let mut bytes = KVVec::from_elem(0u8, 4096, GFP_KERNEL)?;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31) ^ 0x5a;
        }
        // SAFETY: `bytes` holds 4096 readable bytes, the page 4096.
        unsafe { page.write_raw(bytes.as_ptr(), 0, 4096)? };
        let mut out = [None; 3];
        let mut run = LentRun {
            seed: 7,
            out: &mut out,
            mask: 0,
        };
        let data = (&raw mut run).cast::<c_void>();
        // SAFETY: `data` is `run`, used by nothing else during the calls;
        // `page` is allocated (so valid) for longer than they take.
        unsafe {
            hash_lent(data, 1, page.as_ptr());
            hash_lent(data, 3, page.as_ptr());
        }
        assert_eq!(run.mask, 0b10);
        assert_eq!(out, [None, Some(page_hash(7, &bytes)), None]);
        Ok(())
    }

    #[test]
    fn scanner_hook_moves_a_store_to_the_destination() -> Result {
        let (src, dst) = layouts()?;
        let map = AuditMap::migrated(src, dst).ok_or(EINVAL)?;
        let gma = src.aperture.base + 0x40;
        let mut cmd = [(0x20 << 23) | (1 << 22) | 2, u32::try_from(gma)?, 0, 7];
        assert_eq!(gvt::patch_command(&mut cmd, Mode::EXECLIST, &map), Ok(1));
        assert_eq!(u64::from(cmd[1]), dst.aperture.base + 0x40);
        cmd[1] = 0x1000;
        assert!(gvt::patch_command(&mut cmd, Mode::EXECLIST, &map).is_err());
        assert_eq!(cmd[1], 0x1000);
        Ok(())
    }
}
