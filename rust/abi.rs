// SPDX-License-Identifier: GPL-2.0

//! The C shim's entry points (shim/gmig_shim.h): one `unsafe extern "C"`
//! function per `gmig_rs_*()` of the sim provider. Each turns the shim's
//! pointers into references bounded by the call and dispatches to the
//! provider object ([`crate::sim`]) or to its migration [`Front`].

use kernel::{
    ffi::{c_char, c_int, c_long, c_uint, c_void},
    prelude::*,
    str::CStr,
    types::ForeignOwnable,
};

use crate::{
    ffi::{from_result, GmigVdev, Vdev},
    gmig_core::planner::Param,
    migration::vfio::{Front, Ops, Registered},
    sim::{self, vgpu_ref, Shared, Vgpu},
    vfio::{self, bindings::vfio_device},
};

/// A value written to module parameter `which` (`enum gmig_param`): its
/// canonical spelling goes to `buf`, or -EINVAL if it is no value of the
/// parameter (the buffer is then unchanged). The one parser of the values
/// is [`Param::canonical`].
///
/// # Safety
///
/// `val` is a NUL-terminated string and `buf` is valid for writes of `cap`
/// bytes; the caller holds the module parameter lock.
#[no_mangle]
unsafe extern "C" fn gmig_rs_param_set(
    which: u32,
    val: *const c_char,
    buf: *mut c_char,
    cap: usize,
) -> c_int {
    // SAFETY: `val` is NUL-terminated (the function's contract).
    let val = unsafe { CStr::from_char_ptr(val) };
    let Some(name) = Param::from_u32(which)
        .zip(val.to_str().ok())
        .and_then(|(p, v)| p.canonical(v))
    else {
        return EINVAL.to_errno();
    };
    if name.len() >= cap {
        return EINVAL.to_errno();
    }
    // SAFETY: `buf` holds `cap > name.len()` bytes (the function's
    // contract): the name and its NUL fit, uncut.
    unsafe { copy_cstr(buf, cap, name) };
    0
}

// The sim provider's entry points.

/// Number of vGPU types.
///
/// # Safety
///
/// None beyond the call being made from C: it reads a constant table.
#[no_mangle]
unsafe extern "C" fn gmig_rs_type_count() -> c_int {
    c_int::try_from(sim::type_count()).unwrap_or(0)
}

/// Copies `src`, cut to `cap - 1` bytes and NUL-terminated, to `dst`.
///
/// # Safety
///
/// `dst` is valid for writes of `cap >= 1` bytes.
unsafe fn copy_cstr(dst: *mut c_char, cap: usize, src: &str) {
    let n = src.len().min(cap.saturating_sub(1));
    // SAFETY: `dst` holds `cap` bytes (the function's contract); we write
    // `n + 1 <= cap` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(src.as_ptr(), dst.cast::<u8>(), n);
        *dst.add(n) = 0;
    }
}

/// Fills in the sysfs name and description of type `index`.
///
/// # Safety
///
/// `name` and `desc` point to buffers of GMIG_TYPE_NAME_LEN and
/// GMIG_TYPE_DESC_LEN bytes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_type_info(
    index: c_uint,
    name: *mut c_char,
    desc: *mut c_char,
) -> c_int {
    let Some((n, d)) = usize::try_from(index).ok().and_then(sim::type_info) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `name` and `desc` hold GMIG_TYPE_NAME_LEN (32) and
    // GMIG_TYPE_DESC_LEN (160) bytes (caller contract).
    unsafe {
        copy_cstr(name, 32, n);
        copy_cstr(desc, 160, d);
    }
    0
}

/// `available_instances` of type `index`.
///
/// # Safety
///
/// None beyond the call being made from C: any `index` is accepted.
#[no_mangle]
unsafe extern "C" fn gmig_rs_type_available(index: c_uint) -> c_uint {
    usize::try_from(index).map_or(0, sim::type_available)
}

/// Creates the Rust vGPU of a new mdev; on failure returns NULL and sets
/// `*err`.
///
/// # Safety
///
/// `gv` is the shim's live `struct gmig_vdev`, which outlives the returned
/// object (destroyed by `gmig_rs_vgpu_destroy()` from its release); `name`
/// is a NUL-terminated string; `err` is valid for writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_vgpu_create(
    gv: *mut GmigVdev,
    type_index: c_uint,
    name: *const c_char,
    err: *mut c_int,
) -> *mut c_void {
    // SAFETY: `gv` outlives the vGPU (caller contract).
    let vdev = unsafe { Vdev::new(gv) };
    // SAFETY: `name` is a NUL-terminated string (caller contract).
    let name = unsafe { CStr::from_char_ptr(name) };
    let res = usize::try_from(type_index)
        .map_err(|_| EINVAL)
        .and_then(|t| sim::create(vdev, t, name));
    match res {
        Ok(v) => v.into_foreign(),
        Err(e) => {
            // SAFETY: `err` is valid for writes (caller contract).
            unsafe { *err = e.to_errno() };
            core::ptr::null_mut()
        }
    }
}

/// Destroys a vGPU made by `gmig_rs_vgpu_create()`.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not used afterwards.
#[no_mangle]
unsafe extern "C" fn gmig_rs_vgpu_destroy(vgpu: *mut c_void) {
    if vgpu.is_null() {
        return;
    }
    // SAFETY: `vgpu` came from `into_foreign()` in `gmig_rs_vgpu_create()`
    // and ownership returns here exactly once, after every borrow of the
    // other entry points ended (caller contract).
    drop(unsafe { <KBox<Vgpu> as ForeignOwnable>::from_foreign(vgpu) });
}

/// A VFIO user opened the device.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_vgpu_open(vgpu: *mut c_void) {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    unsafe { vgpu_ref(vgpu) }.shared.open();
}

/// The VFIO user closed the device: stop the workload and the streamer; the
/// next user finds a freshly reset vGPU.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_vgpu_close(vgpu: *mut c_void) {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    unsafe { vgpu_ref(vgpu) }.shared.close();
}

/// Size of VFIO region `index` (0 if the region does not exist).
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_region_size(vgpu: *mut c_void, index: c_uint) -> c_long {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    let size = unsafe { vgpu_ref(vgpu) }.shared.region_size(index);
    c_long::try_from(size).unwrap_or(0)
}

/// One access of `len` (1, 2, 4 or 8) bytes to VFIO region `index`.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet;
/// `buf` is valid for `len` bytes of reads and writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_region_rw(
    vgpu: *mut c_void,
    index: c_uint,
    off: u64,
    buf: *mut c_void,
    len: usize,
    write: bool,
) -> isize {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    let s = &unsafe { vgpu_ref(vgpu) }.shared;
    // SAFETY: `buf` is valid for `len` bytes (caller contract).
    let data = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    match s.region_rw(index, off, data, write) {
        Ok(()) => isize::try_from(len).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// VFIO_DEVICE_RESET.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_reset(vgpu: *mut c_void) -> c_int {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    unsafe { vgpu_ref(vgpu) }.shared.reset();
    from_result(Ok(()))
}

/// The command streamer work item.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_exec(vgpu: *mut c_void) {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    unsafe { vgpu_ref(vgpu) }.shared.exec();
}

/// The synthetic workload's timer: returns the delay to the next tick in
/// ms, or -1 to stop.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_workload_tick(vgpu: *mut c_void) -> c_long {
    // SAFETY: `vgpu` is live for this call (the function's contract).
    unsafe { vgpu_ref(vgpu) }
        .shared
        .workload_tick()
        .map_or(-1, |ms| c_long::try_from(ms).unwrap_or(-1))
}

/// A DMA mapping went away: returns once no page of it is pinned by this
/// vGPU (the in-place hashing's runs, `crate::migration::pin`); the streamer's next
/// access to it faults.
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()` and is not destroyed yet.
#[no_mangle]
unsafe extern "C" fn gmig_rs_dma_unmap(vgpu: *mut c_void, iova: u64, length: u64) {
    // The vGPU lock is not taken: type1 calls this with its device list
    // lock held, and the streamer and the hashing hold the vGPU lock across
    // vfio_dma_rw() and vfio_pin_pages(), which take type1's iommu lock (a
    // three-lock cycle). A scan's pinned run is unpinned under the vGPU
    // lock; this waits for it on the run's own spinlock (`PinWindow`).
    // Reads of pages in the range fail from now on and count as changed at
    // the next report.
    // SAFETY: `vgpu` is live for this call (the function's contract).
    unsafe { vgpu_ref(vgpu) }.shared.pins.unmap(iova, length);
}

/// Makes the sim vfio_device `vdev`, not registered yet, migratable: its
/// [`Front`] over `vgpu`, and the migration and DMA logging ops.
///
/// # Safety
///
/// `vdev` is the shim's live vfio_device of `vgpu`, not registered yet;
/// `gmig_rs_sim_front_destroy()` is called before either goes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_sim_front_new(vdev: *mut vfio_device, vgpu: *mut c_void) -> c_int {
    // SAFETY: live until `gmig_rs_sim_front_destroy()` (the contract).
    let (dev, v) = unsafe { (vfio::device::Device::from_raw(vdev), vgpu_ref(vgpu)) };
    // SAFETY: `dev` lives until `destroy`, which the contract promises.
    let res = unsafe { Front::new(dev, v.shared.clone()) }
        .and_then(|f| Shared::with_registry(|r| r.add(f)));
    match res {
        Ok(()) => {
            // SAFETY: not registered yet (the contract): its ops are ours;
            // the ops find the front in the sim's registry.
            unsafe {
                vfio::migration::install::<Ops<Shared>, Ops<Shared>>(dev, vfio::migration::FLAGS)
            };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// The sim vfio_device `vdev` was closed or reset: see [`Front::reset`].
///
/// # Safety
///
/// `vdev` is live, and `gmig_rs_sim_front_new()` succeeded on it.
#[no_mangle]
unsafe extern "C" fn gmig_rs_sim_front_reset(vdev: *mut vfio_device) {
    // SAFETY: live (the contract).
    let dev = unsafe { vfio::device::Device::from_raw(vdev) };
    if let Ok(f) = Shared::front(dev) {
        f.reset();
    }
}

/// The sim vfio_device `vdev` is being released: its front goes.
///
/// # Safety
///
/// `vdev` is live, unregistered (no op runs on it any more).
#[no_mangle]
unsafe extern "C" fn gmig_rs_sim_front_destroy(vdev: *mut vfio_device) {
    // SAFETY: live (the contract).
    let dev = unsafe { vfio::device::Device::from_raw(vdev) };
    if let Some(f) = Shared::with_registry(|r| r.remove(dev)) {
        f.destroy();
    }
}
