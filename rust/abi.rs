// SPDX-License-Identifier: GPL-2.0

//! The C shim's entry points into the migration layer: one `unsafe extern
//! "C"` function per `gmig_rs_mig_*()`, `gmig_rs_log_*()` and
//! `gmig_rs_param_set()` of shim/gmig_shim.h. Each turns the shim's
//! pointers into references bounded by the call and dispatches to
//! [`crate::migration`] over the provider's [`MigDevice`]
//! (`crate::sim::Shared` for the sim, `crate::gvt::GvtDev` for GVT-g).
//! This is the only file that knows both providers and the migration
//! layer: the migration layer sees the provider trait only.

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
};

use crate::{
    ffi::{from_result, IovaBitmap},
    gmig_core::{
        planner::Param,
        provider::PROVIDER_GVT,
        vfio::{arc_fds, ArcFds, DeviceState},
    },
    migration,
    sim::{vgpu_ref, Shared},
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
    val: *const kernel::ffi::c_char,
    buf: *mut kernel::ffi::c_char,
    cap: usize,
) -> c_int {
    // SAFETY: `val` is NUL-terminated (the function's contract).
    let val = unsafe { kernel::str::CStr::from_char_ptr(val) };
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
    // contract); the name and its NUL fit.
    unsafe {
        core::ptr::copy_nonoverlapping(name.as_ptr(), buf.cast::<u8>(), name.len());
        *buf.add(name.len()) = 0;
    }
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

/// read() of the saving data fd: -ENOMSG means "nothing now" in PRE_COPY,
/// 0 "end of stream" in STOP_COPY.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// `buf` is valid for `len` bytes of writes and not otherwise accessed
/// during the call.
#[no_mangle]
unsafe extern "C" fn gmig_rs_mig_read(
    provider: u32,
    rs: *mut c_void,
    buf: *mut c_void,
    len: usize,
) -> isize {
    // SAFETY: `buf` is valid for `len` bytes of writes, exclusively
    // (caller contract).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    on_device!(provider, rs, |d| migration::mig_read(d, out))
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

/// VFIO_MIG_GET_PRECOPY_INFO: unread bytes of the current image.
///
/// # Safety
///
/// `rs` is a live object of `provider` (see `on_device!`).
/// Both pointers are valid for writes.
#[no_mangle]
unsafe extern "C" fn gmig_rs_precopy_info(
    provider: u32,
    rs: *mut c_void,
    initial: *mut u64,
    dirty: *mut u64,
) -> c_int {
    match on_device!(provider, rs, |d| migration::precopy_info(d)) {
        Ok(left) => {
            // SAFETY: valid for writes (caller contract).
            unsafe {
                *initial = left;
                *dirty = 0;
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
