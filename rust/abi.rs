// SPDX-License-Identifier: GPL-2.0

//! The C shim's entry points (shim/gmig_shim.h): one `unsafe extern "C"`
//! function per `gmig_rs_*()` of the sim provider and of the migration
//! layer (kvmgt's callbacks of the GVT-g provider are in `crate::gvt`).
//! Each turns the shim's pointers into references bounded by the call and
//! dispatches to the provider object ([`crate::sim`]) or to
//! [`crate::migration`] over the provider's `MigDevice`
//! (`crate::sim::Shared` for the sim, `crate::gvt::GvtDev` for GVT-g).
//! This is the only file that knows both providers and the migration
//! layer: the migration layer sees the provider trait only.

use kernel::{
    ffi::{c_char, c_int, c_long, c_uint, c_void},
    prelude::*,
    str::CStr,
    types::ForeignOwnable,
};

use crate::{
    ffi::{from_result, GmigVdev, IovaBitmap, Vdev},
    gmig_core::{
        planner::Param,
        provider::PROVIDER_GVT,
        vfio::{arc_fds, ArcFds, DeviceState},
    },
    migration,
    sim::{self, vgpu_ref, Shared, Vgpu},
};

/// Runs `$body` with `$d` bound to the [`MigDevice`] behind `$rs`, an
/// object of provider `$provider` (`GMIG_PROVIDER_*` in the shim, the
/// stream's provider ids), borrowed for the body only. Only for entry
/// points whose `# Safety` says that `rs` is a live object of `provider`:
/// one the shim got from `gmig_rs_vgpu_create()` (sim) or
/// `gmig_rs_gvt_vgpu_create()` (GVT-g) and destroys only after the call.
macro_rules! on_device {
    ($provider:expr, $rs:expr, |$d:ident| $body:expr) => {
        if $provider == u32::from(PROVIDER_GVT) {
            // SAFETY: `$rs` is a live GVT-g object for this call (the entry
            // point's contract).
            let $d = unsafe { crate::gvt::device_ref($rs) };
            $body
        } else {
            // SAFETY: `$rs` is a live sim vGPU for this call (the entry
            // point's contract).
            let $d: &Shared = &unsafe { vgpu_ref($rs) }.shared;
            $body
        }
    };
}

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

/// One arc of the migration state machine.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_arc(provider: u32, rs: *mut c_void, cur: u32, next: u32) -> c_int {
    on_device!(provider, rs, |d| from_result(migration::arc(d, cur, next)))
}

/// read() of the saving data fd, without consuming: copies up to `len`
/// bytes to `buf` and their stream position to `*at`. -ENOMSG means
/// "nothing now" in PRE_COPY, 0 "end of stream" in STOP_COPY. The bytes
/// the reader got are consumed by `gmig_rs_mig_read_commit()`.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// `buf` is valid for `len` bytes of writes and not otherwise accessed
/// during the call; `at` is valid for a write.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_read(
    provider: u32,
    rs: *mut c_void,
    buf: *mut c_void,
    len: usize,
    at: *mut u64,
) -> isize {
    // SAFETY: `buf` is valid for `len` bytes of writes, exclusively
    // (caller contract).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    // SAFETY: `at` is valid for a write (caller contract).
    let at = unsafe { &mut *at };
    on_device!(provider, rs, |d| migration::mig_read(d, out, at))
}

/// The reader of the saving data fd got `n` of the bytes
/// `gmig_rs_mig_read()` handed out at stream position `at`: they are
/// consumed. 0, or -EIO (nothing consumed) if the stream moved since.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_read_commit(
    provider: u32,
    rs: *mut c_void,
    at: u64,
    n: usize,
) -> c_int {
    on_device!(provider, rs, |d| from_result(migration::mig_read_commit(
        d, at, n
    )))
}

/// write() of the resuming data fd.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// `buf` is valid for `len` bytes of reads.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_write(
    provider: u32,
    rs: *mut c_void,
    buf: *const c_void,
    len: usize,
) -> isize {
    // SAFETY: `buf` is valid for `len` bytes (caller contract).
    let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    on_device!(provider, rs, |d| migration::mig_write(d, data))
}

/// VFIO_MIG_GET_PRECOPY_INFO: unread bytes of the current image;
/// `*reinit` says they are new initial data (VFIO_PRECOPY_INFO_REINIT),
/// which only a VMM that opted in (`v2`) is given.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// The three output pointers are valid for writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_precopy_info(
    provider: u32,
    rs: *mut c_void,
    v2: bool,
    initial: *mut u64,
    dirty: *mut u64,
    reinit: *mut bool,
) -> c_int {
    match on_device!(provider, rs, |d| migration::precopy_info(d, v2)) {
        Ok(info) => {
            // SAFETY: valid for writes (caller contract).
            unsafe {
                *initial = info.initial;
                *dirty = 0;
                *reinit = info.reinit;
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: size of a stop-copy image.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// `size` is valid for writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_data_size(
    provider: u32,
    rs: *mut c_void,
    size: *mut u64,
) -> c_int {
    let n = on_device!(provider, rs, |d| migration::data_size(d));
    // SAFETY: valid for writes (caller contract).
    unsafe { *size = n as u64 };
    0
}

/// The migration ended abnormally (close, reset): drop its buffers, let the
/// provider forget what a restore set up ([`Provider::reset`]) and resume
/// scheduling.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_abort(provider: u32, rs: *mut c_void) {
    on_device!(provider, rs, |d| migration::abort(d))
}

/// DMA_LOGGING_START: `ranges` holds `n` (first, last) IOVA pairs.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// `ranges` is valid for `2 * n` reads.
#[no_mangle]
unsafe extern "C" fn gmig_rs_log_start(
    provider: u32,
    rs: *mut c_void,
    ranges: *const u64,
    n: u32,
) -> c_int {
    let Ok(n) = usize::try_from(n) else {
        return EINVAL.to_errno();
    };
    // SAFETY: valid for `2 * n` reads (caller contract).
    let r = unsafe { core::slice::from_raw_parts(ranges, 2 * n) };
    on_device!(provider, rs, |d| from_result(migration::log_start(d, r)))
}

/// DMA_LOGGING_STOP.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
#[no_mangle]
unsafe extern "C" fn gmig_rs_log_stop(provider: u32, rs: *mut c_void) {
    on_device!(provider, rs, |d| migration::log_stop(d))
}

/// DMA_LOGGING_REPORT for `[iova, iova + length)`.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`); `dirty` is the
/// VFIO core's bitmap of this report, valid during the call.
#[no_mangle]
unsafe extern "C" fn gmig_rs_log_report(
    provider: u32,
    rs: *mut c_void,
    iova: u64,
    length: u64,
    dirty: *mut IovaBitmap,
) -> c_int {
    // SAFETY: `dirty` is valid during the call (the function's contract).
    on_device!(provider, rs, |d| from_result(unsafe {
        migration::log_report(d, iova, length, dirty)
    }))
}

/// What arc `cur` -> `next` does with the data fds (`enum gmig_arc_fds`):
/// the shim opens and closes them by this table, [`migration::arc`] does
/// the device's part. A value that is no state keeps them (the arc is then
/// refused).
///
/// # Safety
///
/// None beyond the call being made from C: any values are accepted.
#[no_mangle]
unsafe extern "C" fn gmig_rs_arc_fds(cur: u32, next: u32) -> u32 {
    match (DeviceState::try_from(cur), DeviceState::try_from(next)) {
        (Ok(c), Ok(n)) => arc_fds(c, n) as u32,
        _ => ArcFds::Keep as u32,
    }
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
