// SPDX-License-Identifier: GPL-2.0

//! VFIO devices, their migration and DMA logging, and mediated devices.
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
