// SPDX-License-Identifier: GPL-2.0

//! The C shim's side of the interface (`shim/gmig_shim.h`).
//!
//! Linux 7.3 has no Rust binding for vfio or mdev. `shim/gmig_sim.c` and
//! `shim/gmig_mig.c` own the `struct vfio_device` and everything that touches
//! it; Rust sees an opaque [`GmigVdev`] and calls back through the functions
//! declared here. The Rust entry points the shim calls are in `abi.rs` (the
//! sim vGPU and migration) and `gvt/` (kvmgt's callbacks).

use kernel::{
    bindings,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    sync::aref::ARef, //
};

/// The C `struct gmig_vdev` (opaque): one per mdev, embeds the vfio_device.
#[repr(C)]
pub(crate) struct GmigVdev {
    _private: [u8; 0],
}

/// The C `struct iova_bitmap` (opaque): QEMU's dirty bitmap for one report.
#[repr(C)]
pub(crate) struct IovaBitmap {
    _private: [u8; 0],
}

extern "C" {
    pub(crate) fn gmig_vfio_register() -> c_int;
    pub(crate) fn gmig_vfio_unregister();
    pub(crate) fn gmig_dma_rw(
        gv: *mut GmigVdev,
        iova: u64,
        data: *mut c_void,
        len: usize,
        write: bool,
    ) -> c_int;
    pub(crate) fn gmig_raise_irq(gv: *mut GmigVdev);
    pub(crate) fn gmig_kick_exec(gv: *mut GmigVdev);
    pub(crate) fn gmig_schedule_workload(gv: *mut GmigVdev, delay_ms: c_ulong);
    pub(crate) fn gmig_cancel_workload(gv: *mut GmigVdev);
    pub(crate) fn gmig_vdev_device(gv: *mut GmigVdev) -> *mut c_void;
    pub(crate) fn gmig_log_set_dirty(dirty: *mut IovaBitmap, iova: u64, length: u64);
    pub(crate) fn gmig_pin_pages(
        gv: *mut GmigVdev,
        iova: u64,
        npage: c_int,
        pages: *mut *mut c_void,
    ) -> c_int;
    pub(crate) fn gmig_unpin_pages(gv: *mut GmigVdev, iova: u64, npage: c_int);
}

/// A pointer to the C object that is valid for the whole life of the Rust
/// vGPU that holds it.
///
/// # Invariants
///
/// The pointee outlives every [`Vdev`] made from it: the shim creates the
/// Rust vGPU in the vfio_device's `init` and destroys it in its `release`,
/// and the shim's work items that call into Rust are cancelled before that.
#[derive(Clone, Copy)]
pub(crate) struct Vdev(*mut GmigVdev);

// SAFETY: the C object is used from any thread; every function of the shim
// that takes it does its own locking.
unsafe impl Send for Vdev {}
// SAFETY: see `Send`; `Vdev` gives no access to the pointee's fields.
unsafe impl Sync for Vdev {}

impl Vdev {
    /// # Safety
    ///
    /// `ptr` must be a live `struct gmig_vdev` that outlives the returned
    /// value (see the type invariants).
    pub(crate) unsafe fn new(ptr: *mut GmigVdev) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(ptr)
    }

    /// The C object, for the shim's functions that `crate::migration::pin` calls.
    pub(crate) fn raw(&self) -> *mut GmigVdev {
        self.0
    }

    /// Reads guest memory at `iova` through the VFIO DMA path.
    pub(crate) fn dma_read(&self, iova: u64, buf: &mut [u8]) -> Result {
        // SAFETY: `self.0` is live (invariant); `buf` is valid for `len`
        // bytes of writes for the duration of the call.
        let ret = unsafe { gmig_dma_rw(self.0, iova, buf.as_mut_ptr().cast(), buf.len(), false) };
        to_result(ret)
    }

    /// Writes guest memory at `iova` through the VFIO DMA path.
    pub(crate) fn dma_write(&self, iova: u64, buf: &[u8]) -> Result {
        // SAFETY: `self.0` is live (invariant); `vfio_dma_rw` only reads
        // `buf` (valid for `len` bytes) when `write` is true.
        let ret = unsafe {
            gmig_dma_rw(
                self.0,
                iova,
                buf.as_ptr().cast_mut().cast(),
                buf.len(),
                true,
            )
        };
        to_result(ret)
    }

    /// Signals the vGPU's interrupt (MSI if enabled, else INTx).
    pub(crate) fn raise_irq(&self) {
        // SAFETY: `self.0` is live (invariant).
        unsafe { gmig_raise_irq(self.0) }
    }

    /// Queues the command streamer work item.
    pub(crate) fn kick_exec(&self) {
        // SAFETY: `self.0` is live (invariant).
        unsafe { gmig_kick_exec(self.0) }
    }

    /// (Re)arms the synthetic workload's timer.
    pub(crate) fn schedule_workload(&self, delay_ms: u32) {
        // SAFETY: `self.0` is live (invariant).
        unsafe {
            gmig_schedule_workload(self.0, c_ulong::try_from(delay_ms).unwrap_or(c_ulong::MAX))
        }
    }

    /// Cancels the synthetic workload's timer and waits for a running tick.
    /// Must not be called with the vGPU lock held.
    pub(crate) fn cancel_workload(&self) {
        // SAFETY: `self.0` is live (invariant).
        unsafe { gmig_cancel_workload(self.0) }
    }

    /// The mdev's `struct device`, for logging.
    pub(crate) fn device(&self) -> ARef<kernel::device::Device> {
        // SAFETY: `self.0` is live (invariant), so is the mdev device it
        // returns, whose refcount is non-zero while its vfio_device exists.
        unsafe {
            kernel::device::Device::get_device(gmig_vdev_device(self.0).cast::<bindings::device>())
        }
    }
}

/// Marks `[iova, iova + length)` dirty in QEMU's bitmap.
///
/// # Safety
///
/// `dirty` must be the bitmap the shim passed to the current
/// `gmig_rs_log_report()` call.
pub(crate) unsafe fn set_dirty(dirty: *mut IovaBitmap, iova: u64, length: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { gmig_log_set_dirty(dirty, iova, length) }
}

/// Converts a C return value (0 or a negative errno) into a `Result`.
pub(crate) fn to_result(ret: c_int) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// Converts a `Result` into what C expects (0 or a negative errno).
pub(crate) fn from_result(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
