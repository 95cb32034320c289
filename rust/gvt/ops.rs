// SPDX-License-Identifier: GPL-2.0

//! gmig's companion ops (`struct intel_gvt_companion_ops`): what kvmgt
//! calls on each GVT-g vGPU. Each callback turns kvmgt's pointers into
//! references bounded by the call and hands them to the vGPU's
//! [`GvtDev`]; kvmgt's vfio_device gets gmig's migration and DMA logging
//! ops ([`crate::front`]) when kvmgt creates the vGPU.

use kernel::{
    ffi::{c_int, c_uint, c_void},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

use super::{companion::IntelVgpu, device::GvtDev};
use crate::{
    gmig_core::gvt::EventKind as Event,
    migration::vfio::{Front, Ops, Registered},
    vfio::{self, bindings as b},
};

/// The ops table, shareable: kvmgt only reads it.
#[repr(transparent)]
pub(crate) struct CompanionOps(pub(crate) b::intel_gvt_companion_ops);

// SAFETY: the table is never written after it is built; its `owner`
// pointer is only read, by kvmgt, to take module references.
unsafe impl Sync for CompanionOps {}

/// The table kvmgt is given ([`super::companion::register`]).
pub(crate) static OPS: CompanionOps = CompanionOps(b::intel_gvt_companion_ops {
    version: b::INTEL_GVT_COMPANION_VERSION,
    size: core::mem::size_of::<b::intel_gvt_companion_ops>() as u32,
    // This module: kvmgt holds a reference on it while a vGPU is attached.
    owner: core::ptr::addr_of!(kernel::bindings::__this_module).cast_mut(),
    vgpu_create: Some(vgpu_create),
    vgpu_destroy: Some(vgpu_destroy),
    vgpu_reset: Some(vgpu_reset),
    workload_queued: Some(workload_queued),
    workload_completed: Some(workload_completed),
    sched_stopped: Some(sched_stopped),
    sched_started: Some(sched_started),
    ggtt_write: Some(ggtt_write),
    ppgtt_created: Some(ppgtt_created),
    ppgtt_destroyed: Some(ppgtt_destroyed),
    pages_pinned: Some(pages_pinned),
    pages_unpinned: Some(pages_unpinned),
    scan_cmd: Some(scan_cmd),
    map_gma: Some(map_gma),
    gpa_written: Some(gpa_written),
    scan_workload: Some(scan_workload),
    ppgtt_entry: Some(ppgtt_entry),
});

/// The front behind a companion `priv`.
///
/// # Safety
///
/// `p` came from [`vgpu_create`] and [`vgpu_destroy`] has not run on it:
/// kvmgt destroys a vGPU after its last callback returned.
unsafe fn front<'a>(p: *mut c_void) -> ArcBorrow<'a, Front<GvtDev>> {
    // SAFETY: `p` came from `into_foreign()` in `vgpu_create` and goes
    // back in `vgpu_destroy` only (the function's contract).
    unsafe { <Arc<Front<GvtDev>> as ForeignOwnable>::borrow(p) }
}

/// One of kvmgt's reports, to the vGPU.
///
/// # Safety
///
/// As [`front`].
unsafe fn event(p: *mut c_void, ev: Event, a: u64, b: u64, c: u64) {
    // SAFETY: the caller's contract.
    unsafe { front(p) }.d.event(ev, a, b, c);
}

/// `vgpu_create`.
///
/// # Safety
///
/// kvmgt calls it with its live vGPU, its vfio_device (not registered
/// yet) and the vGPU's layout, which outlive the call.
unsafe extern "C" fn vgpu_create(
    vgpu: *mut IntelVgpu,
    vdev: *mut b::vfio_device,
    layout: *const b::intel_gvt_vgpu_layout,
) -> *mut c_void {
    if vgpu.is_null() || vdev.is_null() || layout.is_null() {
        return EINVAL.to_ptr();
    }
    // SAFETY: kvmgt passes its live vfio_device, which it registers after
    // this returns and unregisters before `vgpu_destroy`, and the vGPU's
    // layout for the call.
    let (dev, layout) = unsafe { (vfio::device::Device::from_raw(vdev), &*layout) };
    // SAFETY: `vgpu` is kvmgt's live vGPU until `vgpu_destroy`.
    let d = match unsafe { GvtDev::create(vgpu, dev, layout) } {
        Ok(d) => d,
        // What kvmgt was told before: the vGPU cannot be made migratable.
        Err(_) => return EINVAL.to_ptr(),
    };
    // SAFETY: `dev` lives until `vgpu_destroy` calls `destroy`.
    let front = match unsafe { Front::new(dev, d) } {
        Ok(f) => f,
        Err(e) => return e.to_ptr(),
    };
    if let Err(e) = GvtDev::with_registry(|r| r.add(front.clone())) {
        return e.to_ptr();
    }
    // SAFETY: kvmgt registers the vfio_device after this returns: its ops
    // are not in use; the ops find the front in GVT-g's registry.
    unsafe { vfio::migration::install::<Ops<GvtDev>, Ops<GvtDev>>(dev, vfio::migration::FLAGS) };
    front.into_foreign().cast()
}

/// The vfio_device is unregistered already: no op can run any more.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn vgpu_destroy(p: *mut c_void) {
    // SAFETY: `p` came from `into_foreign()` in `vgpu_create`; kvmgt calls
    // this once, after every other callback returned.
    let front = unsafe { <Arc<Front<GvtDev>> as ForeignOwnable>::from_foreign(p.cast()) };
    GvtDev::with_registry(|r| r.remove(front.vdev()));
    front.destroy();
    GvtDev::destroyed();
}

/// `vgpu_reset`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn vgpu_reset(p: *mut c_void) {
    // SAFETY: kvmgt calls back on a live vGPU (`front`'s contract).
    unsafe { front(p) }.reset();
}

/// `workload_queued`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn workload_queued(p: *mut c_void, engine: c_uint, lrca: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::WorkloadQueued, engine.into(), lrca, 0) }
}

/// `workload_completed`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn workload_completed(p: *mut c_void, engine: c_uint, lrca: u64, status: c_int) {
    // SAFETY: as for `vgpu_reset`.
    unsafe {
        event(
            p,
            Event::WorkloadCompleted,
            engine.into(),
            lrca,
            i64::from(status) as u64,
        )
    }
}

/// `sched_stopped`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn sched_stopped(p: *mut c_void) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::SchedStopped, 0, 0, 0) }
}

/// `sched_started`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn sched_started(p: *mut c_void) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::SchedStarted, 0, 0, 0) }
}

/// `ggtt_write`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn ggtt_write(p: *mut c_void, index: u64, old: u64, val: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::GgttWrite, index, old, val) }
}

/// `ppgtt_created`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn ppgtt_created(p: *mut c_void, root: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::PpgttCreated, root, 0, 0) }
}

/// `ppgtt_destroyed`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn ppgtt_destroyed(p: *mut c_void, root: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::PpgttDestroyed, root, 0, 0) }
}

/// `pages_pinned`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn pages_pinned(p: *mut c_void, gfn: u64, size: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::PagesPinned, gfn, size, 0) }
}

/// `pages_unpinned`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn pages_unpinned(p: *mut c_void, gfn: u64, size: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::PagesUnpinned, gfn, size, 0) }
}

/// `gpa_written`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn gpa_written(p: *mut c_void, gpa: u64, len: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::GpaWritten, gpa, len, 0) }
}

/// `ppgtt_entry`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn ppgtt_entry(p: *mut c_void, level: c_uint, val: u64) {
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::PpgttEntry, level.into(), val, 0) }
}

/// `scan_workload`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn scan_workload(
    p: *mut c_void,
    engine: c_uint,
    lrca: u64,
    pdps: *const u64,
    lvl4: bool,
) {
    // A 3-level PPGTT (four PDPs) is not walked: 0, as for none.
    let pml4 = if !pdps.is_null() && lvl4 {
        // SAFETY: kvmgt passes its workload's PDPs for the call.
        unsafe { *pdps }
    } else {
        0
    };
    // SAFETY: as for `vgpu_reset`.
    unsafe { event(p, Event::ScanWorkload, engine.into(), lrca, pml4) }
}

/// `scan_cmd`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn scan_cmd(p: *mut c_void, cmd: *mut u32, len: u32, ggtt: bool) -> c_int {
    let Ok(n) = usize::try_from(len) else {
        return EFAULT.to_errno();
    };
    if cmd.is_null() || n == 0 {
        return EFAULT.to_errno();
    }
    // SAFETY: kvmgt passes the command's `len` dwords, ours for the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(cmd, n) };
    // SAFETY: as for `vgpu_reset`.
    let f = unsafe { front(p) };
    f.d.scan_cmd(buf, ggtt)
        .map_or_else(|e| e.to_errno(), |()| 0)
}

/// `map_gma`.
///
/// # Safety
///
/// kvmgt calls it as its companion interface says: with a `priv`
/// from [`vgpu_create`] that [`vgpu_destroy`] has not taken back, and
/// pointers valid for the call.
unsafe extern "C" fn map_gma(p: *mut c_void, gma: *mut u64, size: u64) -> c_int {
    if gma.is_null() {
        return EFAULT.to_errno();
    }
    // SAFETY: kvmgt passes the address to move, ours for the call.
    let gma = unsafe { &mut *gma };
    // SAFETY: as for `vgpu_reset`.
    let f = unsafe { front(p) };
    f.d.map_gma(gma, size).map_or_else(|e| e.to_errno(), |()| 0)
}
