// SPDX-License-Identifier: GPL-2.0

//! The C shim's side of the interface (`shim/gmig_shim.h`).
//!
//! `shim/gmig_sim.c` still registers the sim's mdev parent and its
//! vfio_devices; Rust sees the [`GmigVdev`] that embeds each one, reaches
//! its vfio_device through [`crate::vfio`], and calls back into the shim
//! through the functions declared here for interrupts and work items. The
//! Rust entry points the shim calls are in `abi.rs`.

use kernel::{
    ffi::{c_int, c_ulong},
    prelude::*,
    sync::aref::ARef, //
};

use crate::{log::dev_ratelimited, vfio};

/// The C `struct gmig_vdev` (opaque): one per mdev, embeds the vfio_device.
#[repr(C)]
pub(crate) struct GmigVdev {
    _private: [u8; 0],
}

extern "C" {
    pub(crate) fn gmig_vfio_register() -> c_int;
    pub(crate) fn gmig_vfio_unregister();
    pub(crate) fn gmig_raise_irq(gv: *mut GmigVdev);
    pub(crate) fn gmig_kick_exec(gv: *mut GmigVdev);
    pub(crate) fn gmig_schedule_workload(gv: *mut GmigVdev, delay_ms: c_ulong);
    pub(crate) fn gmig_cancel_workload(gv: *mut GmigVdev);
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
    /// The vfio_device, which `struct gmig_vdev` starts with.
    pub(crate) fn vfio(&self) -> &vfio::device::Device {
        // SAFETY: `self.0` is live (invariant), and its first member is
        // its vfio_device (`vfio_alloc_device()` requires it).
        unsafe { vfio::device::Device::from_raw(self.0.cast()) }
    }

    /// Reads guest memory at `iova` through the VFIO DMA path. A read that
    /// fails counts as changed, a write as a GPU fault; both are logged.
    pub(crate) fn dma_read(&self, iova: u64, buf: &mut [u8]) -> Result {
        let len = buf.len();
        self.vfio()
            .dma_read(iova, buf)
            .inspect_err(|e| self.dma_failed("read", len, iova, *e))
    }

    /// Writes guest memory at `iova` through the VFIO DMA path.
    pub(crate) fn dma_write(&self, iova: u64, buf: &[u8]) -> Result {
        self.vfio()
            .dma_write(iova, buf)
            .inspect_err(|e| self.dma_failed("write", buf.len(), iova, *e))
    }

    fn dma_failed(&self, what: &str, len: usize, iova: u64, e: Error) {
        dev_ratelimited!(
            dev_notice,
            self.vfio().dev(),
            "vfio_dma_rw {} of {} bytes at IOVA {:#x}: {}\n",
            what,
            len,
            iova,
            e.to_errno()
        );
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
        self.vfio().dev_ref()
    }
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
