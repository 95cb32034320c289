// SPDX-License-Identifier: GPL-2.0

//! The gvt provider: gmig as kvmgt's companion module (patches/gvt).
//!
//! `shim/gmig_gvt.c` finds kvmgt's companion interface at load time and
//! registers gmig's ops with it; each callback lands here. What is wired:
//!
//! - every GVT-g vGPU created while gmig is loaded gets a [`GvtVgpu`]
//!   with its graphics memory layout ([`GvtLayout`]);
//! - shadow GGTT/PPGTT changes and page pins become [`ShadowEvent`]s
//!   ([`gvt::ggtt_write_event`], [`gvt::pin_event`]) and tracker updates
//!   ([`tracker_update`]), counted in debugfs `gmig/gvt`;
//! - the command scanner hook rewrites GGTT addresses with the vGPU's
//!   [`AuditMap`] ([`gvt::patch_command`]).
//!
//! TODO: not wired yet, because the migration layer (`migration.rs`)
//! drives the sim vGPU only: VFIO migration and DMA logging ops on GVT-g's
//! vfio_device, a hash tracker fed by these events, quiesce/resume through
//! kvmgt's `intel_gvt_companion_{stop,start}_schedule()`, the state image
//! ([`gvt::write_image`] / [`gvt::decode_image`]) through
//! `intel_gvt_companion_{save,restore}_state()`, and switching the
//! [`AuditMap`] to the source's layout after a restore. None of it can be
//! run without an Intel GPU (Broadwell to Comet Lake).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::{
    ffi::{c_int, c_void},
    prelude::*, //
};

use crate::{
    ffi::to_result,
    gmig_core::{
        cmd::Mode,
        gvt::{self, AuditMap, GvtLayout, COMPANION_VERSION},
        provider::{tracker_update, ShadowEvent},
    },
};

extern "C" {
    fn gmig_gvt_register() -> c_int;
    fn gmig_gvt_unregister();
}

// Event kinds of `gmig_rs_gvt_event()` (`enum gmig_gvt_event` in
// shim/gmig_shim.h).
const WORKLOAD_QUEUED: u32 = 1;
const WORKLOAD_COMPLETED: u32 = 2;
const SCHED_STOPPED: u32 = 3;
const SCHED_STARTED: u32 = 4;
const GGTT_WRITE: u32 = 5;
const PPGTT_CREATED: u32 = 6;
const PPGTT_DESTROYED: u32 = 7;
const PAGES_PINNED: u32 = 8;
const PAGES_UNPINNED: u32 = 9;

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
}

static REGISTERED: AtomicBool = AtomicBool::new(false);

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
        writeln!(f, "cmds_refused: {}", r(&c.cmds_refused))
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

/// gmig's state for one GVT-g vGPU (the companion's `priv`).
struct GvtVgpu {
    /// The vGPU's graphics memory and fences.
    layout: GvtLayout,
    /// Address translation of the command scanner hook.
    audit: AuditMap,
    /// kvmgt's vGPU id, for messages.
    id: u32,
}

impl GvtVgpu {
    fn track(&self, ev: ShadowEvent) {
        if let Some(r) = tracker_update(&ev) {
            bump(&COUNTERS.pages_reported, r.count);
        }
    }

    fn event(&self, kind: u32, a: u64, b: u64, c: u64) {
        let n = &COUNTERS;
        match kind {
            WORKLOAD_QUEUED => bump(&n.workloads_queued, 1),
            WORKLOAD_COMPLETED => {
                bump(&n.workloads_completed, 1);
                // `c` is the C int status, sign-extended.
                if c != 0 {
                    bump(&n.workloads_failed, 1);
                }
            }
            SCHED_STOPPED => bump(&n.sched_stops, 1),
            SCHED_STARTED => bump(&n.sched_starts, 1),
            GGTT_WRITE => {
                bump(&n.ggtt_writes, 1);
                match gvt::ggtt_write_event(&self.layout, a, b, c) {
                    Some(ev) => self.track(ev),
                    None => bump(&n.ggtt_foreign, 1),
                }
            }
            PPGTT_CREATED => {
                bump(&n.ppgtt_shadows, 1);
                self.track(ShadowEvent::PpgttCreate { root: a });
            }
            PPGTT_DESTROYED => {
                n.ppgtt_shadows
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                    .ok();
                self.track(ShadowEvent::PpgttDestroy { root: a });
            }
            PAGES_PINNED | PAGES_UNPINNED => {
                let pinned = kind == PAGES_PINNED;
                bump(if pinned { &n.pins } else { &n.unpins }, 1);
                if let Some(ev) = gvt::pin_event(a, b, pinned) {
                    self.track(ev);
                }
            }
            _ => pr_warn!("gvt: vGPU {}: unknown event {}\n", self.id, kind),
        }
    }
}

/// kvmgt created a vGPU: returns gmig's state for it, or NULL (kvmgt then
/// fails the creation) if its layout is invalid or memory is short.
#[no_mangle]
extern "C" fn gmig_rs_gvt_vgpu_create(
    _vgpu: *mut c_void,
    aperture_base: u64,
    aperture_size: u64,
    hidden_base: u64,
    hidden_size: u64,
    fences: u32,
    id: u32,
) -> *mut c_void {
    let Some(layout) = GvtLayout::new(
        (aperture_base, aperture_size),
        (hidden_base, hidden_size),
        fences,
    ) else {
        pr_warn!(
            "gvt: vGPU {id}: invalid layout (aperture {aperture_base:#x}+{aperture_size:#x}, hidden {hidden_base:#x}+{hidden_size:#x}, {fences} fences)\n"
        );
        return core::ptr::null_mut();
    };
    let g = GvtVgpu {
        layout,
        audit: AuditMap::identity(layout),
        id,
    };
    match KBox::new(g, GFP_KERNEL) {
        Ok(b) => {
            bump(&COUNTERS.vgpus, 1);
            KBox::into_raw(b).cast()
        }
        Err(_) => core::ptr::null_mut(),
    }
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
    // SAFETY: `gg` came from `KBox::into_raw()` in
    // `gmig_rs_gvt_vgpu_create()`; ownership returns here once (caller
    // contract).
    drop(unsafe { KBox::from_raw(gg.cast::<GvtVgpu>()) });
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
    // SAFETY: live and only read through a shared reference (caller
    // contract; `GvtVgpu` has no interior mutability but its counters).
    let g = unsafe { &*gg.cast::<GvtVgpu>() };
    g.event(kind, a, b, c);
}

/// The command scanner hook: rewrites GGTT addresses of the command at
/// `cmd` (`len` dwords of GVT-g's shadow copy) in place. Returns 0, or
/// -EFAULT to fail the scan.
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
    _ggtt: bool,
) -> c_int {
    // SAFETY: live (caller contract).
    let g = unsafe { &*gg.cast::<GvtVgpu>() };
    let Ok(n) = usize::try_from(len) else {
        return EFAULT.to_errno();
    };
    if cmd.is_null() || n == 0 {
        return EFAULT.to_errno();
    }
    // SAFETY: `cmd` is non-null and valid for `n` dwords of exclusive
    // access for the duration of the call (caller contract).
    let buf = unsafe { core::slice::from_raw_parts_mut(cmd, n) };
    // Under execlists, blits go through the GGTT and 3D state through the
    // context's PPGTT; commands with an explicit bit use it.
    match gvt::patch_command(buf, Mode::EXECLIST, &g.audit) {
        Ok(k) => {
            bump(
                &COUNTERS.addrs_patched,
                u64::try_from(k).unwrap_or(u64::MAX),
            );
            0
        }
        Err(_) => {
            bump(&COUNTERS.cmds_refused, 1);
            EFAULT.to_errno()
        }
    }
}

#[kunit_tests(gmig_gvt)]
mod tests {
    use super::*;
    use crate::gmig_core::{gtt::Pte, provider::TrackRange};

    const MIB: u64 = 1 << 20;

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
