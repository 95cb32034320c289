// SPDX-License-Identifier: GPL-2.0

//! VFIO devices (`struct vfio_device`): the DMA access and pinning an
//! emulated-IOMMU driver does through them.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h)

use kernel::{device, prelude::*, sync::aref::ARef, types::Opaque};

use super::bindings;

/// A VFIO device, registered by this driver or by another one (GVT-g's
/// kvmgt registers the vfio_devices gmig migrates).
///
/// # Invariants
///
/// A `&Device` points to a live `struct vfio_device`: its memory stays
/// valid for the reference's lifetime. The VFIO core calls a driver's ops
/// only on such devices, and a driver that keeps a reference beyond an op
/// holds it in an object the device's `release` outlives.
#[repr(transparent)]
pub(crate) struct Device(Opaque<bindings::vfio_device>);

// SAFETY: `struct vfio_device` is used from any thread; every C function
// that takes it does its own locking.
unsafe impl Send for Device {}
// SAFETY: see `Send`; a `&Device` only calls such functions.
unsafe impl Sync for Device {}

/// The protection of pinned pages ([`Device::pin_pages`]): the driver
/// reads them only.
const IOMMU_READ: c_int = 1;

impl Device {
    /// Creates a reference to a [`Device`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` points to a `struct vfio_device` that stays live for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::vfio_device) -> &'a Self {
        // SAFETY: `Device` is `repr(transparent)` over the C struct, and the
        // caller guarantees it lives for `'a` (the type invariant).
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct vfio_device`.
    pub(crate) fn as_raw(&self) -> *mut bindings::vfio_device {
        self.0.get()
    }

    /// The device the vfio_device stands for (an mdev, a PCI function),
    /// which messages are logged for.
    pub(crate) fn dev(&self) -> &device::Device {
        // SAFETY: `dev` is set before a vfio_device is registered and never
        // changes; that device outlives its vfio_device (type invariant).
        unsafe { device::Device::from_raw((*self.as_raw()).dev) }
    }

    /// A counted reference to [`Device::dev`].
    pub(crate) fn dev_ref(&self) -> ARef<device::Device> {
        self.dev().into()
    }

    /// Whether the VMM opted in to `VFIO_PRECOPY_INFO_REINIT`
    /// (`VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2`).
    pub(crate) fn precopy_info_v2(&self) -> bool {
        // SAFETY: the device is live (type invariant); the VFIO core sets
        // the flag under the device's migration feature, a byte written
        // whole.
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).precopy_info_v2) != 0 }
    }

    /// Reads guest memory at `iova` through the VFIO DMA path
    /// (`vfio_dma_rw()`), into all of `buf`.
    pub(crate) fn dma_read(&self, iova: u64, buf: &mut [u8]) -> Result {
        // SAFETY: the device is live (type invariant); `buf` is valid for
        // `buf.len()` bytes of writes for the duration of the call.
        kernel::error::to_result(unsafe {
            bindings::vfio_dma_rw(
                self.as_raw(),
                iova,
                buf.as_mut_ptr().cast(),
                buf.len(),
                false,
            )
        })
    }

    /// Writes all of `buf` to guest memory at `iova` (`vfio_dma_rw()`).
    pub(crate) fn dma_write(&self, iova: u64, buf: &[u8]) -> Result {
        // SAFETY: the device is live (type invariant); with `write` set,
        // `vfio_dma_rw()` only reads `buf`, valid for `buf.len()` bytes.
        kernel::error::to_result(unsafe {
            bindings::vfio_dma_rw(
                self.as_raw(),
                iova,
                buf.as_ptr().cast_mut().cast(),
                buf.len(),
                true,
            )
        })
    }

    /// Pins the `pages.len()` guest pages from `iova` for reading
    /// (`vfio_pin_pages()`), all of them or none.
    ///
    /// # Safety
    ///
    /// The device is open, and the caller unpins the same run with
    /// [`Device::unpin_pages`] before its `dma_unmap` op returns for any
    /// range that overlaps it (the VFIO core's rule for emulated IOMMUs).
    pub(crate) unsafe fn pin_pages(
        &self,
        iova: u64,
        pages: &mut [*mut kernel::bindings::page],
    ) -> Result {
        let n = c_int::try_from(pages.len()).map_err(|_| EINVAL)?;
        // SAFETY: the device is live (type invariant) and open (the
        // caller's contract); `pages` holds `n` slots.
        let ret = unsafe {
            bindings::vfio_pin_pages(self.as_raw(), iova, n, IOMMU_READ, pages.as_mut_ptr())
        };
        if ret == n {
            return Ok(());
        }
        if ret > 0 {
            // Both IOMMU backends pin all or none; be safe if that changes.
            // SAFETY: the `ret` pages from `iova` were pinned just now.
            unsafe { bindings::vfio_unpin_pages(self.as_raw(), iova, ret) };
        }
        Err(if ret < 0 {
            Error::from_errno(ret)
        } else {
            EFAULT
        })
    }

    /// Unpins a run [`Device::pin_pages`] pinned.
    ///
    /// # Safety
    ///
    /// The `npage` pages from `iova` were pinned by one successful
    /// [`Device::pin_pages`] call on this device and are not unpinned yet.
    pub(crate) unsafe fn unpin_pages(&self, iova: u64, npage: usize) {
        // A run that was pinned has a length that fits (see `pin_pages`).
        let n = c_int::try_from(npage).unwrap_or(c_int::MAX);
        // SAFETY: the run is pinned (the caller's contract).
        unsafe { bindings::vfio_unpin_pages(self.as_raw(), iova, n) }
    }
}

/// The `struct device` behind a [`device::Device`] reference.
pub(crate) fn raw_device<Ctx: device::DeviceContext>(
    dev: &device::Device<Ctx>,
) -> *mut kernel::bindings::device {
    // `device::Device` is a transparent wrapper of `struct device`; the
    // pointer is only handed to C functions that take a live device.
    core::ptr::from_ref(dev)
        .cast::<kernel::bindings::device>()
        .cast_mut()
}
