// SPDX-License-Identifier: GPL-2.0

//! Eventfds a VFIO user hands a device to be signalled by
//! (`VFIO_DEVICE_SET_IRQS`): interrupts and device requests.
//!
//! C header: [`include/linux/eventfd.h`](srctree/include/linux/eventfd.h)

use core::ptr::NonNull;

use kernel::prelude::*;

use super::bindings;

/// A reference to an eventfd's context.
///
/// # Invariants
///
/// `0` holds one reference on a live `struct eventfd_ctx`, dropped with
/// the value.
pub(crate) struct EventFd(NonNull<kernel::bindings::eventfd_ctx>);

// SAFETY: an eventfd context is signalled and put from any thread.
unsafe impl Send for EventFd {}
// SAFETY: `signal` takes the context's own lock.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// The eventfd behind file descriptor `fd` of the calling process.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: any value may be passed; a bad one gets an error.
        let ctx = unsafe { bindings::eventfd_ctx_fdget(fd) };
        let ctx = kernel::error::from_err_ptr(ctx)?;
        // INVARIANT: `eventfd_ctx_fdget()` took a reference.
        NonNull::new(ctx).map(Self).ok_or(EBADF)
    }

    /// Adds one to the eventfd's counter and wakes its readers.
    pub(crate) fn signal(&self) {
        // SAFETY: a live context (type invariant).
        unsafe { bindings::eventfd_signal_mask(self.0.as_ptr(), 0) }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: the reference the value holds (type invariant).
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) }
    }
}
