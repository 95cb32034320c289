// SPDX-License-Identifier: GPL-2.0

//! What a sim vGPU reaches of its VFIO device ([`Vdev`]): guest memory
//! through the VFIO DMA path, its interrupts, and the work items of its
//! command streamer and synthetic workload.

use core::ptr::NonNull;

use kernel::{prelude::*, sync::SpinLock};

use crate::{
    log::dev_ratelimited,
    vfio::{self, eventfd::EventFd},
};

/// The interrupts a VFIO user set up.
#[derive(Default)]
pub(super) struct Irqs {
    pub(super) intx: Option<EventFd>,
    pub(super) msi: Option<EventFd>,
    /// The device request channel (removal while open).
    pub(super) req: Option<EventFd>,
    pub(super) intx_masked: bool,
}

/// Signals the interrupt set up in `irqs`: MSI if set up, else INTx
/// (level, emulated as an automasked edge, as vfio-pci does).
pub(super) fn raise_irq(irqs: &SpinLock<Irqs>) {
    let mut i = irqs.lock();
    if let Some(msi) = i.msi.as_ref() {
        msi.signal();
    } else if !i.intx_masked {
        if let Some(intx) = i.intx.as_ref() {
            intx.signal();
            i.intx_masked = true;
        }
    }
}

/// (Re)arms the delayed work item `w` of a `SimVdev` to run in `delay_ms`.
pub(super) fn queue_workload(w: *mut kernel::bindings::delayed_work, delay_ms: u32) {
    let j = kernel::time::msecs_to_jiffies(delay_ms);
    // SAFETY: `w` is an initialised work item of a live `SimVdev`, which
    // cancels it before it goes; the queue is the kernel's.
    unsafe {
        kernel::bindings::mod_delayed_work_on(
            kernel::bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
            kernel::bindings::system_unbound_wq,
            w,
            j,
        )
    };
}

/// The handle a vGPU keeps to its VFIO device ([`super::vfio::SimVdev`]):
/// the vfio_device, and the interrupts and work items around the vGPU.
///
/// # Invariants
///
/// Every pointer is to a live, initialised part of one `SimVdev` and its
/// vfio_device, for as long as the handle is used: the vGPU that holds it
/// lives in that object, which cancels its work items before it goes.
#[derive(Clone, Copy)]
pub(crate) struct Vdev {
    vfio: NonNull<vfio::device::Device>,
    irqs: NonNull<SpinLock<Irqs>>,
    exec_work: *mut kernel::bindings::work_struct,
    workload_work: *mut kernel::bindings::delayed_work,
}

// SAFETY: the device is used from any thread; what the handle reaches
// does its own locking.
unsafe impl Send for Vdev {}
// SAFETY: see `Send`.
unsafe impl Sync for Vdev {}

impl Vdev {
    /// # Safety
    ///
    /// The parts are those of one `SimVdev`, initialised, and live for as
    /// long as the handle is used (the type invariant).
    pub(super) unsafe fn new(
        vfio: &vfio::device::Device,
        irqs: &SpinLock<Irqs>,
        exec_work: *mut kernel::bindings::work_struct,
        workload_work: *mut kernel::bindings::delayed_work,
    ) -> Self {
        // INVARIANT: the caller's contract.
        Self {
            vfio: NonNull::from(vfio),
            irqs: NonNull::from(irqs),
            exec_work,
            workload_work,
        }
    }

    /// The vfio_device.
    pub(crate) fn vfio(&self) -> &vfio::device::Device {
        // SAFETY: live (type invariant).
        unsafe { self.vfio.as_ref() }
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
        // SAFETY: live (type invariant).
        raise_irq(unsafe { self.irqs.as_ref() });
    }

    /// Queues the command streamer work item.
    pub(crate) fn kick_exec(&self) {
        // SAFETY: the work item is initialised (type invariant).
        unsafe {
            kernel::bindings::queue_work_on(
                kernel::bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                kernel::bindings::system_unbound_wq,
                self.exec_work,
            )
        };
    }

    /// (Re)arms the synthetic workload's timer.
    pub(crate) fn schedule_workload(&self, delay_ms: u32) {
        queue_workload(self.workload_work, delay_ms);
    }

    /// Cancels the synthetic workload's timer and waits for a running tick.
    /// Must not be called with the vGPU lock held.
    pub(crate) fn cancel_workload(&self) {
        // SAFETY: the work item is initialised (type invariant).
        unsafe { kernel::bindings::cancel_delayed_work_sync(self.workload_work) };
    }

    /// The mdev's `struct device`, for logging.
    pub(crate) fn device(&self) -> kernel::sync::aref::ARef<kernel::device::Device> {
        self.vfio().dev_ref()
    }
}
