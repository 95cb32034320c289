// SPDX-License-Identifier: GPL-2.0

//! VFIO devices, their migration and DMA logging, and mediated devices:
//! the abstractions Linux 7.3's kernel crate does not have, for a driver
//! whose devices have an emulated IOMMU.
//!
//! - [`device`]: a `struct vfio_device`, its DMA access and pins;
//! - [`driver`]: a driver's `vfio_device_ops` (`#[vtable]`) and the
//!   registration of its devices;
//! - [`migration`]: the migration and DMA logging ops as traits;
//! - [`file`]: the migration data fd;
//! - [`mdev`]: mdev parents, their types and driver;
//! - [`eventfd`]: the eventfds a VFIO user signals through.
//!
//! [`bindings`] is bindgen's output for the C side (see `Kbuild`).
//! Documentation/rust-vfio.rst says what is covered and what is left out.
//!
//! C headers: [`include/linux/vfio.h`](srctree/include/linux/vfio.h),
//! [`include/linux/mdev.h`](srctree/include/linux/mdev.h).

pub(crate) mod bindings;
pub(crate) mod device;
pub(crate) mod driver;
pub(crate) mod eventfd;
pub(crate) mod file;
pub(crate) mod mdev;
pub(crate) mod migration;
